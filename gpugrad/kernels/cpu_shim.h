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
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GG_SHIM_HAS_MXCSR 1
#endif

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

inline unsigned int gg_bits(float v) {
    unsigned int b;
    memcpy(&b, &v, sizeof b);
    return b;
}

inline unsigned long long gg_bits(double v) {
    unsigned long long b;
    memcpy(&b, &v, sizeof b);
    return b;
}

// Flush-to-zero emulation.  On the GPU, CuPy compiles with -ftz=true: float32
// operands and results that are subnormal count as zeros, in comparisons too.
// The harness can run a launch with the SSE control register's FTZ (flush
// results) and DAZ (treat subnormal operands as zero) bits set, which does the
// same to the CPU's float arithmetic and comparisons.  (It also flushes double,
// which the GPU does not: FTZ runs are only meaningful for float16/float32.)
// gg_exact_add/gg_exact_mul stand for PTX add.rn.f32/mul.rn.f32 without .ftz,
// which the GPU never flushes: they clear the two bits for their one operation.
#ifdef GG_SHIM_HAS_MXCSR
#define GG_MXCSR_FTZ_DAZ 0x8040u
// The control register is read and written with volatile asm that clobbers
// memory: GCC does not model MXCSR, and with _mm_setcsr it moved a float
// comparison past the restore.  Volatile asm statements keep their order, and
// the memory clobber keeps loads and stores (hence the arithmetic between
// them) on their side.
inline unsigned int gg_get_mxcsr() {
    unsigned int value;
    asm volatile("stmxcsr %0" : "=m"(value) : : "memory");
    return value;
}
inline void gg_set_mxcsr(unsigned int value) { asm volatile("ldmxcsr %0" : : "m"(value) : "memory"); }
inline float gg_exact_add(float a, float b) {
    const unsigned int saved = gg_get_mxcsr();
    gg_set_mxcsr(saved & ~GG_MXCSR_FTZ_DAZ);
    asm volatile("addss %1, %0" : "+x"(a) : "x"(b));
    gg_set_mxcsr(saved);
    return a;
}
inline float gg_exact_mul(float a, float b) {
    const unsigned int saved = gg_get_mxcsr();
    gg_set_mxcsr(saved & ~GG_MXCSR_FTZ_DAZ);
    asm volatile("mulss %1, %0" : "+x"(a) : "x"(b));
    gg_set_mxcsr(saved);
    return a;
}
inline float gg_exact_float(double v) {
    const unsigned int saved = gg_get_mxcsr();
    gg_set_mxcsr(saved & ~GG_MXCSR_FTZ_DAZ);
    float r;
    asm volatile("cvtsd2ss %1, %0" : "=x"(r) : "x"(v));
    gg_set_mxcsr(saved);
    return r;
}
#else
inline float gg_exact_add(float a, float b) { return a + b; }
inline float gg_exact_mul(float a, float b) { return a * b; }
inline float gg_exact_float(double v) { return (float)v; }
#endif

#endif  // GG_CPU_SHIM_H
