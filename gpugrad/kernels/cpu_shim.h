// Lets the CUDA sources in this directory compile as plain C++ (g++ -x c++), so a
// machine without a GPU can still run every kernel, grid-stride loop included,
// and compare it with its NumPy twin.  The harness (harness.cpp) plays the
// hardware: it sets blockIdx/threadIdx and calls the kernel once per thread.
//
// Threads run one after another, so kernels that need cooperation between
// threads (shared memory, warp shuffles, __syncthreads) cannot be tested this
// way; the activation kernels are written without any on purpose.
#ifndef GG_CPU_SHIM_H
#define GG_CPU_SHIM_H
#define GG_CPU_SHIM 1

#include <math.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// g++ spells __restrict__ the same way as nvcc, so it needs no mapping.

struct gg_dim3 {
    unsigned int x, y, z;
};
inline gg_dim3 threadIdx = {0, 0, 0};
inline gg_dim3 blockIdx = {0, 0, 0};
inline gg_dim3 blockDim = {1, 1, 1};
inline gg_dim3 gridDim = {1, 1, 1};

// float16 as its bits, converted exactly like the PTX cvt instructions (and
// NumPy's astype): round to nearest even, overflow to inf, NaN stays NaN.
struct gg_half {
    unsigned short bits;
};

inline float gg_half_to_float(gg_half h) {
    unsigned int sign = (unsigned int)(h.bits & 0x8000u) << 16;
    unsigned int exponent = (h.bits >> 10) & 0x1fu;
    unsigned int mantissa = h.bits & 0x3ffu;
    unsigned int bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        // Subnormal (or zero): mantissa * 2^-24 is exact in float.
        float value = ldexpf((float)mantissa, -24);
        return sign ? -value : value;
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

inline gg_half gg_float_to_half(float f) {
    unsigned int x;
    memcpy(&x, &f, sizeof x);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int absx = x & 0x7fffffffu;
    unsigned short out;
    if (absx >= 0x47800000u) {
        // >= 65536: inf, or NaN kept quiet.
        out = (unsigned short)(absx > 0x7f800000u ? 0x7e00u : 0x7c00u);
    } else if (absx < 0x38800000u) {
        // Result is subnormal or zero: adding 0.5f moves the 2^-24 place to the
        // float's last mantissa bit, and the float addition rounds to nearest even.
        float magnitude;
        memcpy(&magnitude, &absx, sizeof magnitude);
        float shifted = magnitude + 0.5f;
        unsigned int shifted_bits;
        memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
        out = (unsigned short)(shifted_bits - 0x3f000000u);
    } else {
        // Normal: rebias the exponent, round the 13 dropped bits to nearest even;
        // a carry out of the mantissa correctly bumps the exponent (up to inf).
        unsigned int odd = (absx >> 13) & 1u;
        absx += 0xc8000fffu + odd;  // (15 - 127) << 23, plus 0xfff: rounding bias
        out = (unsigned short)(absx >> 13);
    }
    gg_half h;
    h.bits = (unsigned short)(out | sign);
    return h;
}

#endif  // GG_CPU_SHIM_H
