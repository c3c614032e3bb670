/* device: nn_forward's dispatch between the CPU (net.c) and a registered device backend
 * (nn_backend.h), and the device choice of a model.
 * Not the GPU code (cuda/) and not the CPU maths (net.c, layers.c).
 * Invariants: the backend pointer is set before models are shared by threads; after that a
 * model's device state changes only through atomics (dev_stale, dev_dead) and the backend
 * serialises its own calls. A device error never reaches nn_forward's caller: the CPU scores
 * the windows instead, and after a non-memory failure every later call too (one log line). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "nn_backend.h"

static const NnBackend *registered;

void nn_backend_register(const NnBackend *b) { registered = b; }
const NnBackend *nn_backend_get(void) { return registered; }

void nn_device_release(NnModel *m)
{
    if (m->dev && m->dev_net) m->dev->net_free(m->dev_net);
    m->dev = NULL;
    m->dev_net = NULL;
    m->dev_name[0] = '\0';
}

int nn_model_set_device(NnModel *m, int device, ErrMsg *e)
{
    if (device != NN_DEVICE_AUTO && device != NN_DEVICE_CPU && device != NN_DEVICE_CUDA) {
        err_set(e, "unknown device %d", device);
        return -1;
    }
    nn_device_release(m);
    m->dev_dead = 0;
    m->dev_stale = 0;
    if (device == NN_DEVICE_CPU) return NN_DEVICE_CPU;
    const NnBackend *b = registered;
    ErrMsg why = {{0}};
    char desc[64] = "";
    if (!b) {
        err_set(&why, "this genred was built without CUDA");
    } else if (b->probe(desc, sizeof desc, &why) == 0) {
        m->dev_net = b->net_create(m, &why);
        if (m->dev_net) {
            m->dev = b;
            snprintf(m->dev_name, sizeof m->dev_name, "%s (%s)", b->name, desc);
            return NN_DEVICE_CUDA;
        }
    }
    if (device == NN_DEVICE_CUDA) {
        err_set(e, "cannot use the GPU: %s", why.msg);
        return -1;
    }
    log_debug("nn: no usable GPU (%s); using the CPU", why.msg);
    if (e) *e = why; /* AUTO: not an error, but the caller may show why */
    return NN_DEVICE_CPU;
}

int nn_model_device(const NnModel *m)
{
    return m->dev && !m->dev_dead ? NN_DEVICE_CUDA : NN_DEVICE_CPU;
}

const char *nn_model_device_name(const NnModel *m)
{
    return m->dev && !m->dev_dead ? m->dev_name : "cpu";
}

/* Runs n windows on the device, halving on out-of-memory. 0, or -1 with e (not OOM at n=1:
 * a single window that does not fit is a failure like any other). */
static int device_forward(NnModel *m, const float *x, int n, int frames, float *probs,
                          ErrMsg *e)
{
    int rc = m->dev->forward(m->dev_net, probs, x, n, frames, e);
    if (rc != NN_BACKEND_EOOM) return rc;
    if (n == 1) return err_set(e, "out of device memory for one window");
    int h = n / 2;
    int64_t plane = (int64_t)m->info.n_mels * frames;
    log_debug("nn: device out of memory at %d windows, trying %d", n, h);
    if (device_forward(m, x, h, frames, probs, e) < 0) return -1;
    return device_forward(m, x + h * plane, n - h, frames, probs + (int64_t)h * m->info.n_labels,
                          e);
}

int nn_forward(NnModel *m, const float *x, int n, int frames, float *probs, ErrMsg *e)
{
    if (nn_check_input(m, n, frames, e) < 0) return -1;
    if (m->dev && !atomic_load(&m->dev_dead)) {
        ErrMsg de = {{0}};
        int rc = 0;
        if (atomic_exchange(&m->dev_stale, 0)) rc = m->dev->net_upload(m->dev_net, m, &de);
        if (rc == 0) rc = device_forward(m, x, n, frames, probs, &de);
        if (rc == 0) return 0;
        if (atomic_exchange(&m->dev_dead, 1) == 0)
            log_warn("nn: %s failed (%s); scoring on the CPU from now on", m->dev->name, de.msg);
    }
    return nn_cpu_forward(m, x, n, frames, probs, e);
}
