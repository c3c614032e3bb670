/* train/rng.h (internal to train/): the one random number generator of training and
 * augmentation: xoshiro256** seeded through splitmix64. Everything random in train/ draws from
 * an Rng in a fixed order, so a run is reproducible from its --seed. */
#ifndef GENRED_TRAIN_RNG_H
#define GENRED_TRAIN_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

static inline uint64_t rng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void rng_seed(Rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix(&seed);
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return res;
}

/* Uniform in [0, 1). */
static inline double rng_uniform(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n). */
static inline int rng_int(Rng *r, int n) { return n <= 1 ? 0 : (int)(rng_uniform(r) * n); }

/* Uniform in [lo, hi). */
static inline double rng_range(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

static inline double rng_normal(Rng *r)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

#endif
