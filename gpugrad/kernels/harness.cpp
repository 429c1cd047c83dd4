// CPU harness for the CUDA kernels: built with
//     g++ -std=c++17 -O2 -ffp-contract=off -shared -fPIC harness.cpp
// and driven from tests/test_kernels.py through ctypes.  Every kernel gets one
// exported function per dtype, h_<kernel>_<f16|f32|f64>, all with the same C
// signature so the test can call any of them the same way:
//     (grid, block, p0, p1, p2, p3, n, c, a, b)
// p0..p3 are the kernel's array arguments in order, n the element count, c the
// bias length, a and b the scalar parameters.
#include "cpu_shim.h"
#include "activation.cu"

namespace {

// Set by h_set_flush_to_zero: launches then run with FTZ|DAZ (see cpu_shim.h).
bool flush_to_zero = false;

// The control register is per thread and NumPy shares it: set only for the
// launch and restored after, whatever the kernel does.
struct FlushScope {
#ifdef GG_SHIM_HAS_MXCSR
    unsigned int saved = gg_get_mxcsr();
    FlushScope() {
        if (flush_to_zero) gg_set_mxcsr(saved | GG_MXCSR_FTZ_DAZ);
    }
    ~FlushScope() { gg_set_mxcsr(saved); }
#endif
};

// Runs the launch the way the hardware would, one (block, thread) at a time,
// so the grid-stride loops are exercised with a grid smaller than the data.
template <typename Body>
void launch(int grid, int block, Body body) {
    FlushScope scope;
    gridDim.x = (unsigned)grid;
    blockDim.x = (unsigned)block;
    for (int b = 0; b < grid; ++b) {
        blockIdx.x = (unsigned)b;
        for (int t = 0; t < block; ++t) {
            threadIdx.x = (unsigned)t;
            body();
        }
    }
}

}  // namespace

#define GG_EXPORT(kernel, T, suffix, ARGS)                                                     \
    extern "C" void h_##kernel##_##suffix(int grid, int block, void* p0, void* p1, void* p2, \
                                          void* p3, long long n, long long c, double a,      \
                                          double b) {                                        \
        (void)p0; (void)p1; (void)p2; (void)p3; (void)c; (void)a; (void)b;                   \
        launch(grid, block, [&] { kernel<T> ARGS; });                                        \
    }

#define GG_EXPORT_ALL(kernel, ARGS_OF)                  \
    GG_EXPORT(kernel, gg_half, f16, ARGS_OF(gg_half))   \
    GG_EXPORT(kernel, float, f32, ARGS_OF(float))       \
    GG_EXPORT(kernel, double, f64, ARGS_OF(double))

// Argument lists of each kernel family (see FAMILIES in __init__.py).
#define GG_ARGS_UNARY(T) ((const T*)p0, (T*)p1, n, a, b)
#define GG_ARGS_BACKWARD(T) ((const T*)p0, (const T*)p1, (T*)p2, n, a, b)
#define GG_ARGS_BIAS_FORWARD(T) ((const T*)p0, (const T*)p1, (T*)p2, n, c, a, b)
#define GG_ARGS_BIAS_BACKWARD(T) ((const T*)p0, (const T*)p1, (const T*)p2, (T*)p3, n, c, a, b)
#define GG_ARGS_FORWARD_MASK(T) ((const T*)p0, (T*)p1, (unsigned char*)p2, n, a, b)
#define GG_ARGS_BIAS_FORWARD_MASK(T) ((const T*)p0, (const T*)p1, (T*)p2, (unsigned char*)p3, n, c, a, b)
#define GG_ARGS_MASK_BACKWARD(T) ((const T*)p0, (const unsigned char*)p1, (T*)p2, n, a, b)
#define GG_ARGS_DROPOUT_FORWARD(T) ((const T*)p0, (const float*)p1, (T*)p2, (unsigned char*)p3, n, a, b)

// One set of exports per activation, expanded from activation.cu's GG_ACTIVATIONS list.
#define GG_EXPORT_MASK_ACTIVATION(name, Op)                              \
    GG_EXPORT_ALL(gg_##name##_forward, GG_ARGS_UNARY)                    \
    GG_EXPORT_ALL(gg_##name##_forward_mask, GG_ARGS_FORWARD_MASK)        \
    GG_EXPORT_ALL(gg_##name##_bias_forward_mask, GG_ARGS_BIAS_FORWARD_MASK) \
    GG_EXPORT_ALL(gg_##name##_backward, GG_ARGS_MASK_BACKWARD)

#define GG_EXPORT_OUTPUT_ACTIVATION(name, Op)                     \
    GG_EXPORT_ALL(gg_##name##_forward, GG_ARGS_UNARY)             \
    GG_EXPORT_ALL(gg_##name##_backward, GG_ARGS_BACKWARD)         \
    GG_EXPORT_ALL(gg_##name##_bias_forward, GG_ARGS_BIAS_FORWARD)

#define GG_EXPORT_INPUT_ACTIVATION(name, Op) \
    GG_EXPORT_OUTPUT_ACTIVATION(name, Op)    \
    GG_EXPORT_ALL(gg_##name##_bias_backward, GG_ARGS_BIAS_BACKWARD)

GG_ACTIVATIONS(GG_EXPORT_MASK_ACTIVATION, GG_EXPORT_OUTPUT_ACTIVATION, GG_EXPORT_INPUT_ACTIVATION)
GG_EXPORT_ALL(gg_dropout_forward, GG_ARGS_DROPOUT_FORWARD)
GG_EXPORT_ALL(gg_dropout_backward, GG_ARGS_MASK_BACKWARD)

extern "C" void h_gg_pack_mask(int grid, int block, void* p0, void* p1, void*, void*, long long n,
                               long long, double, double) {
    launch(grid, block, [&] { gg_pack_mask((const unsigned char*)p0, (unsigned char*)p1, n); });
}

extern "C" void h_gg_unpack_mask(int grid, int block, void* p0, void* p1, void*, void*, long long n,
                                 long long, double, double) {
    launch(grid, block, [&] { gg_unpack_mask((const unsigned char*)p0, (unsigned char*)p1, n); });
}

// Turns flush-to-zero emulation on or off for the following launches; returns
// whether this CPU can emulate it (x86 SSE), so a test can skip elsewhere.
extern "C" int h_set_flush_to_zero(int on) {
#ifdef GG_SHIM_HAS_MXCSR
    flush_to_zero = on != 0;
    return 1;
#else
    (void)on;
    return 0;
#endif
}

// The comparison a kernel made before this fix (x > 0 on the float), under the
// current emulation mode: proves to the test that the emulation flushes.
extern "C" int h_float_compare_positive(float x) {
    volatile float v = x;
    volatile int positive;
    {
        FlushScope scope;
        positive = v > 0.0f;
    }
    return positive;
}

// Converters, so the test can check the shim's float16 rounding against NumPy.
extern "C" void h_float_to_half(const float* in, unsigned short* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = gg_float_to_half(in[i]).bits;
}

extern "C" void h_half_to_float(const unsigned short* in, float* out, long long n) {
    for (long long i = 0; i < n; ++i) {
        gg_half h;
        h.bits = in[i];
        out[i] = gg_half_to_float(h);
    }
}
