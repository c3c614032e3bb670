// The genred page in a real browser: Debian's chromium, headless, driven by puppeteer-core (no
// browser download). Its microphone is a fake device playing CLIP (a wav). Steps: record 5 s and
// see a genre; upload a file through the file input and see a genre with its mel picture; see
// the library chart; correct the least sure track's genre. Prints one JSON object of what it saw
// (browser_test.py checks it against the API and the files) and saves a screenshot.
// Usage: node browser_test.mjs URL CLIP.wav UPLOAD_FILE NEW_GENRE OUT_DIR
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const [url, clip, upload, newGenre, outDir] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'genred-chromium-'));
const seen = { problems: [], steps: [] };

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  userDataDir,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${clip}`,
  ],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') seen.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) seen.problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  await page.setViewport({ width: 1150, height: 1000 });
  await page.goto(url, { waitUntil: 'networkidle0' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  seen.model = await page.$eval('#model', (e) => e.textContent);

  // 1. five seconds from the (fake) microphone
  await page.click('#record');
  await page.waitForSelector('#stop:not([hidden])', { timeout: 15000 });
  let loudest = 0;
  for (let i = 0; i < 25; i++) {
    await sleep(200);
    loudest = Math.max(loudest, Number(await page.$eval('#meter', (e) => e.getAttribute('aria-valuenow'))));
  }
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#result-meta').textContent.startsWith('recording'),
    { timeout: 60000 });
  seen.record = {
    genre: await page.$eval('#genre', (e) => e.textContent),
    meta: await page.$eval('#result-meta', (e) => e.textContent),
    bars: await page.$$eval('#bars li', (l) => l.length),
    windows: await page.$$eval('#windows tbody tr', (l) => l.length),
    loudest,
  };
  seen.steps.push('record');

  // 2. a file through the file input
  const input = await page.$('#file');
  await input.uploadFile(upload);
  const name = path.basename(upload);
  await page.waitForFunction((n) => document.querySelector('#result-meta').textContent.startsWith(n),
    { timeout: 60000 }, name);
  await page.waitForFunction(() => {
    const img = document.querySelector('#mel');
    return !img.hidden && img.complete && img.naturalWidth > 0;
  }, { timeout: 30000 });
  seen.upload = {
    genre: await page.$eval('#genre', (e) => e.textContent),
    confidence: await page.$eval('#confidence', (e) => e.textContent),
    meta: await page.$eval('#result-meta', (e) => e.textContent),
    mel: await page.$eval('#mel', (e) => [e.naturalWidth, e.naturalHeight]),
    status: await page.$eval('#status', (e) => e.textContent),
  };
  seen.steps.push('upload');

  // 3. the library chart
  await page.waitForSelector('#chart li', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('#tracks tbody tr').length > 0, { timeout: 30000 });
  seen.chart = await page.$$eval('#chart li', (lis) => lis.map((li) => [
    li.querySelector('button').textContent, Number(li.querySelector('.value').textContent)]));
  seen.counts = await page.$eval('#counts', (e) => e.textContent);

  // 4. correct the least sure track
  const row = await page.$('#tracks tbody tr');
  seen.corrected = {
    id: Number(await row.evaluate((r) => r.dataset.id)),
    path: await row.$eval('.path', (e) => e.title),
    before: await row.$eval('.genre', (e) => e.textContent),
  };
  await row.$eval('input', (e) => e.focus());
  await page.keyboard.type(newGenre);
  await page.keyboard.press('Enter');
  await page.waitForFunction((id) => {
    const r = document.querySelector(`#tracks tr[data-id="${id}"]`);
    return r && r.querySelector('.badge');
  }, { timeout: 30000 }, String(seen.corrected.id));
  seen.corrected.after = await page.$eval(`#tracks tr[data-id="${seen.corrected.id}"] .genre`, (e) => e.textContent);
  seen.corrected.status = await page.$eval('#list-status', (e) => e.textContent);
  seen.steps.push('correct');

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(outDir, 'web-page.png'), fullPage: true });
  // the README's picture, small
  await page.screenshot({ path: path.join(outDir, 'web-page.jpg'), type: 'jpeg', quality: 70, fullPage: true });
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  await sleep(300);
  seen.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
} catch (e) {
  seen.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(seen));
