/* logreg.c -- logistic regression in plain C, trained by fastoptim's Adam kernel.
 *
 * The C twin of examples/numpy_logreg.py: the caller owns every array (parameters, gradients,
 * Adam's moments and step counters) and each training step is one fo_adam_step_f32 call over
 * the whole "param group" (the weights and the bias), updating them in place.  Build and run
 * against the installed package (the rpath in --libs finds libfastoptim, no LD_LIBRARY_PATH):
 *
 *     cc -std=c99 -O2 logreg.c $(fastoptim-config --cflags --libs) -lm -o logreg && ./logreg
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <fastoptim.h>

#define N 512 /* samples */
#define D 8   /* features */

/* A small deterministic generator (xorshift64*), uniform in [-1, 1). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 23) - 1.0f;
}

int main(void)
{
    static float x[N][D], y[N];
    float w_true[D];
    for (int j = 0; j < D; j++) w_true[j] = uniform();
    for (int i = 0; i < N; i++) {
        float z = 0.0f;
        for (int j = 0; j < D; j++) z += (x[i][j] = uniform()) * w_true[j];
        y[i] = z + 0.05f * uniform() > 0.0f ? 1.0f : 0.0f;
    }

    /* Parameters, gradients and Adam's state: all owned here. */
    float w[D] = {0}, b[1] = {0}, gw[D], gb[1];
    float m_w[D] = {0}, m_b[1] = {0}, v_w[D] = {0}, v_b[1] = {0};
    float step_w = 0.0f, step_b = 0.0f;          /* torch keeps state['step'] as float32 */
    float *params[2] = {w, b}, *exp_avgs[2] = {m_w, m_b}, *exp_avg_sqs[2] = {v_w, v_b};
    const float *grads[2] = {gw, gb};
    float *steps[2] = {&step_w, &step_b};
    const int64_t numels[2] = {D, 1};

    printf("fastoptim %s (library ABI %d, header ABI %d)\n", fo_version(), fo_abi_version(),
           FASTOPTIM_ABI_VERSION);
    double first = 0.0, loss = 0.0;
    for (int epoch = 0; epoch < 200; epoch++) {
        /* Mean binary cross-entropy of sigmoid(x @ w + b), and its gradient by hand. */
        loss = 0.0;
        for (int j = 0; j < D; j++) gw[j] = 0.0f;
        gb[0] = 0.0f;
        for (int i = 0; i < N; i++) {
            float z = b[0];
            for (int j = 0; j < D; j++) z += x[i][j] * w[j];
            float p = 1.0f / (1.0f + expf(-z));
            loss -= y[i] * log(p + 1e-7) + (1.0f - y[i]) * log(1.0f - p + 1e-7);
            float r = (p - y[i]) / N;
            for (int j = 0; j < D; j++) gw[j] += x[i][j] * r;
            gb[0] += r;
        }
        loss /= N;
        if (epoch == 0) first = loss;
        /* One kernel call steps the whole group: lr, betas, eps, weight_decay, amsgrad,
         * maximize, decoupled_weight_decay (torch.optim.Adam's defaults but lr). */
        fo_adam_step_f32(params, grads, exp_avgs, exp_avg_sqs, NULL, steps, numels, 2, 0.05,
                         0.9, 0.999, 1e-8, 0.0, 0, 0, 0);
    }
    printf("loss %.4f -> %.4f after %g Adam steps\n", first, loss, (double)step_w);
    return loss < first ? 0 : 1;
}
