// genred's web page: classify a file or a recording, browse and correct the library.
// Plain DOM, no framework, no external resources (the page must work offline). Everything the
// page knows about the model (labels, rate, windows) comes from GET /api/info. POSTs carry the
// page's CSRF token. Sizes are set through the CSSOM (el.style), which the strict CSP allows.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const MAX_RECORD_S = 120;
  let info = null;

  // ---- helpers ----

  async function api(path, opts = {}) {
    const headers = Object.assign({}, opts.headers || {});
    if (opts.method === 'POST') headers['X-CSRF-Token'] = csrf;
    const res = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts, { headers }));
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return { body, res };
  }

  function el(tag, props = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function status(msg, isError = false) {
    const s = $('status');
    s.textContent = msg;
    s.classList.toggle('error', isError);
  }

  const pct = (p) => `${(100 * p).toFixed(1)} %`;

  function displayName(label) {
    const i = info ? info.model.labels.indexOf(label) : -1;
    return i >= 0 ? info.model.display_names[i] : label;
  }

  // A bar: a label, a track whose fill is p of its width, and the value.
  function bar(label, p, extra) {
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    return el('li', {}, el('span', { class: 'label', text: label }),
      el('span', { class: 'track' }, fill), el('span', { class: 'value', text: extra }));
  }

  // ---- classify ----

  async function classify(blob, name, asForm) {
    const limit = info ? info.max_upload_mb * 1024 * 1024 : Infinity;
    if (blob.size > limit) {
      status(`${name} is ${(blob.size / 1048576).toFixed(1)} MB: this server takes at most ${info.max_upload_mb} MB`, true);
      return;
    }
    status(`Classifying ${name}…`);
    $('result').setAttribute('aria-busy', 'true');
    const t0 = performance.now();
    let opts;
    let url = '/api/classify?mel=1';
    if (asForm) {
      const fd = new FormData();
      fd.append('audio', blob, name);
      opts = { method: 'POST', body: fd };
    } else {
      url += `&name=${encodeURIComponent(name)}`;
      opts = { method: 'POST', body: blob, headers: { 'Content-Type': blob.type || 'application/octet-stream' } };
    }
    try {
      const { body, res } = await api(url, opts);
      showResult(body, res, performance.now() - t0, name);
      status('');
    } catch (e) {
      status(`${name}: ${e.message}`, true);
    } finally {
      $('result').removeAttribute('aria-busy');
    }
  }

  function showResult(r, res, ms, name) {
    $('result').hidden = false;
    $('genre').textContent = r.genre;
    $('confidence').textContent = pct(r.confidence);
    const timing = res.headers.get('Server-Timing') || '';
    const m = /classify;dur=([\d.]+)/.exec(timing);
    $('result-meta').textContent = `${name} · model ${r.model} · ${Math.round(ms)} ms` +
      (m ? ` (classifying ${Math.round(parseFloat(m[1]))} ms)` : '');
    const labels = Object.keys(r.probabilities).sort((a, b) => r.probabilities[b] - r.probabilities[a]);
    $('bars').replaceChildren(...labels.map((l) => bar(displayName(l), r.probabilities[l], pct(r.probabilities[l]))));
    // windows: one row per window, one cell per label, shaded by its probability
    const order = Object.keys(r.probabilities);
    const head = el('tr', {}, el('th', { scope: 'col', text: 'window' }),
      ...order.map((l) => el('th', { scope: 'col', text: displayName(l) })));
    $('windows').tHead.replaceChildren(head);
    const rows = r.windows.map((w, i) => {
      const top = w.indexOf(Math.max(...w));
      return el('tr', {}, el('th', { scope: 'row', text: `${i + 1}` }), ...w.map((p, k) => {
        const td = el('td', { class: k === top ? 'top' : '', title: `${displayName(order[k])}: ${pct(p)}` },
          `${Math.round(100 * p)}`);
        td.style.setProperty('--p', p.toFixed(3));
        return td;
      }));
    });
    $('windows').tBodies[0].replaceChildren(...rows);
    const mel = res.headers.get('X-Genred-Mel');
    const img = $('mel');
    img.hidden = !mel;
    if (mel) img.src = mel;
  }

  function setupClassify() {
    const input = $('file');
    input.addEventListener('change', () => {
      if (input.files.length) classify(input.files[0], input.files[0].name, true);
      input.value = '';
    });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const f = e.dataTransfer.files[0];
      if (f) classify(f, f.name, true);
    });
    $('record').addEventListener('click', startRecording);
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      $('record').disabled = true;
      $('record').title = 'this browser cannot record here (recording needs https or localhost)';
    }
  }

  // ---- record ----

  async function startRecording() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      status(`No microphone: ${e.message}`, true);
      return;
    }
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const chunks = [];
    const rec = new MediaRecorder(stream);
    rec.addEventListener('dataavailable', (e) => { if (e.data.size) chunks.push(e.data); });
    const t0 = performance.now();
    let timer = 0;
    let frame = 0;
    const stop = () => { if (rec.state !== 'inactive') rec.stop(); };
    rec.addEventListener('stop', () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
      $('recording').hidden = true;
      $('stop').hidden = true;
      $('record').hidden = false;
      $('record').focus();
      const type = rec.mimeType || 'audio/webm';
      const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      classify(new Blob(chunks, { type }), `recording (${secs} s).${ext}`, false);
    }, { once: true });
    const meter = $('meter');
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      // dBFS of the last 46 ms, shown over -60..0 dB
      const db = 10 * Math.log10(sum / samples.length + 1e-12);
      const level = Math.max(0, Math.min(100, (db + 60) / 60 * 100));
      $('meter-bar').style.width = `${level}%`;
      meter.setAttribute('aria-valuenow', level.toFixed(0));
      $('rec-time').textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
      frame = requestAnimationFrame(draw);
    };
    rec.start(250);
    timer = setTimeout(stop, MAX_RECORD_S * 1000);
    $('record').hidden = true;
    $('stop').hidden = false;
    $('recording').hidden = false;
    $('stop').addEventListener('click', stop, { once: true });
    $('stop').focus();
    status(`Recording… (at most ${MAX_RECORD_S} s)`);
    draw();
  }

  // ---- library ----

  let next = null;
  let searchTimer = 0;

  async function loadStats() {
    const { body } = await api('/api/stats');
    $('counts').textContent = `${body.total} tracks: ${body.ok} tagged, ${body.errors} failed, ${body.untagged} untagged`;
    const max = Math.max(1, ...body.genres.map((g) => g.count));
    const filter = $('genre-filter');
    const chosen = filter.value;
    $('chart').replaceChildren(...body.genres.map((g) => {
      const li = bar('', g.count / max, `${g.count}`);
      const b = el('button', { type: 'button', class: 'link', text: g.genre,
        title: `show the ${g.genre} tracks, least sure first (mean confidence ${pct(g.mean_confidence)})` });
      b.addEventListener('click', () => {
        filter.value = g.genre;
        $('filter').value = 'ok';
        $('sort').value = 'confidence';
        loadTracks(false);
      });
      li.firstChild.replaceWith(el('span', { class: 'label' }, b));
      return li;
    }));
    filter.replaceChildren(el('option', { value: '', text: 'any' }),
      ...body.genres.map((g) => el('option', { value: g.genre, text: g.genre })));
    filter.value = body.genres.some((g) => g.genre === chosen) ? chosen : '';
    const names = new Set([...info.model.display_names, ...body.genres.map((g) => g.genre)]);
    $('genre-names').replaceChildren(...[...names].sort().map((n) => el('option', { value: n })));
  }

  function trackRow(t) {
    const slash = t.path.lastIndexOf('/');
    const where = el('td', { class: 'path', title: t.path },
      el('span', { class: 'name', text: t.path.slice(slash + 1) }),
      el('span', { class: 'dir muted', text: t.path.slice(0, slash + 1) }));
    const genre = el('td', { class: 'genre' }, t.genre || '—');
    if (t.corrected) genre.append(' ', el('span', { class: 'badge', text: 'set by hand', title: `genred said ${t.model_genre}` }));
    if (t.status === 'error') genre.append(el('span', { class: 'error small', text: t.error || 'failed' }));
    if (t.status === 'untagged') genre.append(' ', el('span', { class: 'badge', text: 'untagged' }));
    const conf = el('td', { class: 'conf' });
    if (t.confidence !== null) {
      const m = el('span', { class: 'track small-track' }, el('span', { class: 'fill' }));
      m.firstChild.style.width = `${100 * t.confidence}%`;
      conf.append(m, ` ${pct(t.confidence)}`);
    }
    const input = el('input', { type: 'text', list: 'genre-names', 'aria-label': `genre of ${t.path}`,
      placeholder: t.genre || 'genre', required: '' });
    const save = el('button', { type: 'submit', text: 'Save' });
    const form = el('form', { class: 'correct' }, input, save);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        const { body } = await api(`/api/tracks/${t.id}/genre`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ genre: input.value }),
        });
        row.replaceWith(trackRow(body));
        $('list-status').textContent = `${t.path}: genre set to ${body.genre}`;
        loadStats().catch(() => {});
      } catch (err) {
        $('list-status').textContent = `${t.path}: ${err.message}`;
        save.disabled = false;
      }
    });
    const row = el('tr', { 'data-id': `${t.id}` }, where, el('td', { text: t.artist || '' }), genre, conf,
      el('td', {}, form));
    return row;
  }

  async function loadTracks(append) {
    const p = new URLSearchParams({ filter: $('filter').value, sort: $('sort').value, limit: '50' });
    if ($('genre-filter').value) p.set('genre', $('genre-filter').value);
    if ($('q').value.trim()) p.set('q', $('q').value.trim());
    if (append && next) p.set('after', next);
    else p.set('total', '1');
    const t0 = performance.now();
    try {
      const { body } = await api(`/api/tracks?${p}`);
      const rows = body.tracks.map(trackRow);
      const tb = $('tracks').tBodies[0];
      if (append) tb.append(...rows);
      else tb.replaceChildren(...rows);
      next = body.next;
      $('more').hidden = !next;
      if (!append) $('tracks').dataset.total = body.total;
      $('list-status').textContent = `${tb.rows.length} of ${$('tracks').dataset.total} shown (${Math.round(performance.now() - t0)} ms)`;
    } catch (e) {
      $('list-status').textContent = e.message;
    }
  }

  function setupLibrary() {
    $('library').hidden = false;
    for (const id of ['genre-filter', 'sort']) $(id).addEventListener('change', () => loadTracks(false));
    $('filter').addEventListener('change', () => {
      // errors and untagged files have no confidence to sort by
      if (['error', 'untagged'].includes($('filter').value) && $('sort').value === 'confidence') {
        $('sort').value = 'recent';
      }
      loadTracks(false);
    });
    $('q').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => loadTracks(false), 250);
    });
    $('filters').addEventListener('submit', (e) => {
      e.preventDefault();
      loadTracks(false);
    });
    $('more').addEventListener('click', () => loadTracks(true));
    loadStats().then(() => loadTracks(false)).catch((e) => { $('counts').textContent = e.message; });
  }

  async function start() {
    setupClassify();
    try {
      ({ body: info } = await api('/api/info'));
    } catch (e) {
      $('model').textContent = `no model: ${e.message}`;
      return;
    }
    const m = info.model;
    $('model').textContent = `model ${m.id} (${m.arch}, ${m.labels.length} genres, ${m.windows} windows of ` +
      `${m.window_seconds} s at ${m.sample_rate} Hz, ${m.n_mels} mel bands) on ${m.device}`;
    document.body.dataset.ready = '1';
    if (info.library) setupLibrary();
  }

  start();
})();
