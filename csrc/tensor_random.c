/* tensor_random.c -- the random generator behind randn/rand/init: xoshiro256** (fast, small
 * state, good statistics) with an explicit state owned by the caller, so results are
 * reproducible from manual_seed and independent of any other library's generator. */
#include "common.h"
#include "fastoptim.h"

static inline uint64_t fo_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t fo_next(fo_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = fo_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fo_rotl(s[3], 45);
    return result;
}

/* A double uniform in [0, 1) from the top 53 bits. */
static inline double fo_unit(fo_rng *r) { return (double)(fo_next(r) >> 11) * 0x1.0p-53; }

void fo_rng_seed(fo_rng *rng, uint64_t seed)
{
    /* splitmix64 expands one seed into a well-mixed, never-all-zero state */
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9E3779B97F4A7C15ULL;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
        rng->s[i] = x ^ (x >> 31);
    }
    rng->has_spare = 0;
    rng->spare = 0.0;
}

/* Polar Box-Muller: two normals per accepted pair; the second is kept for the next call. */
static inline double fo_normal(fo_rng *r)
{
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u, v, s;
    do {
        u = 2.0 * fo_unit(r) - 1.0;
        v = 2.0 * fo_unit(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

#define FO_RANDOM_IMPL(SFX, T)                                                      \
    void fo_randn_##SFX(fo_rng *rng, int64_t n, T *out)                             \
    {                                                                               \
        for (int64_t i = 0; i < n; i++) out[i] = (T)fo_normal(rng);                 \
    }                                                                               \
    void fo_uniform_##SFX(fo_rng *rng, int64_t n, T *out, double lo, double hi)     \
    {                                                                               \
        const double w = hi - lo;                                                   \
        for (int64_t i = 0; i < n; i++) {                                           \
            T v = (T)(lo + w * fo_unit(rng));                                       \
            out[i] = (v >= (T)hi && hi > lo) ? (T)lo : v;                           \
        }                                                                           \
    }

FO_RANDOM_IMPL(f32, float)
FO_RANDOM_IMPL(f64, double)
