// Vectorisation support for the kernels: run-time choice of the instruction set, eight-float
// vectors, an exp that vectorises, and per-thread scratch buffers.
//
// torch's extensions are compiled for the baseline x86-64 (SSE2), and at::vec::Vectorized only
// vectorises inside ATen's own CPU_CAPABILITY builds (in an extension its exp is a scalar loop).
// So the hot loops here are plain loops written for GCC's vectoriser (or eight-float vectors,
// below), and each kernel's inner function (the work on one block of rows, `run<isa>`) is
// compiled three times: for the baseline, for AVX2 + FMA and for AVX-512, inlined into wrapper
// functions that carry a `target` attribute (`flatten`). The wrapper is chosen at run time from
// what the CPU supports, like ATen's CPU_CAPABILITY dispatch, so the library runs on any x86-64
// CPU. Nothing outside the wrappers is compiled for a wider target, so no shared inline function
// can end up with instructions an older CPU lacks.
//
// GAT_PYG_ISA=base|avx2|avx512 (environment, read once) caps the choice, to compare them or to
// test the narrower paths on a wide machine.
#pragma once

#include <c10/util/BFloat16.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GAT_PYG_X86_DISPATCH 1
#else
#define GAT_PYG_X86_DISPATCH 0
#endif

#define GAT_PYG_INLINE inline __attribute__((always_inline))

#if GAT_PYG_X86_DISPATCH
#define GAT_PYG_AVX2_FLAGS "avx2,fma,bmi,bmi2,f16c,popcnt"
#define GAT_PYG_AVX512_FLAGS "avx512f,avx512bw,avx512vl,avx512dq," GAT_PYG_AVX2_FLAGS
#endif

namespace gat_pyg {

enum class Isa : int { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

// The widest instruction set both the CPU and GAT_PYG_ISA allow (computed once).
Isa active_isa();
const char* isa_name(Isa isa);

// Calls Kernel::run<isa>(args...) for the active instruction set `isa`; `wide` = false keeps the
// baseline (float64, where the wide versions would only add compile time).
#if GAT_PYG_X86_DISPATCH
template <typename Kernel, typename... Args>
__attribute__((flatten)) void run_base(Args&... args) {
  Kernel::template run<Isa::kBase>(args...);
}
template <typename Kernel, typename... Args>
__attribute__((target(GAT_PYG_AVX2_FLAGS), flatten)) void run_avx2(Args&... args) {
  Kernel::template run<Isa::kAvx2>(args...);
}
template <typename Kernel, typename... Args>
__attribute__((target(GAT_PYG_AVX512_FLAGS), flatten)) void run_avx512(Args&... args) {
  Kernel::template run<Isa::kAvx512>(args...);
}

template <typename Kernel, bool wide = true, typename... Args>
void dispatch_isa(Isa isa, Args&... args) {
  if constexpr (wide) {
    if (isa == Isa::kAvx512) return run_avx512<Kernel>(args...);
    if (isa == Isa::kAvx2) return run_avx2<Kernel>(args...);
  }
  run_base<Kernel>(args...);
}
#else
template <typename Kernel, bool wide = true, typename... Args>
void dispatch_isa(Isa, Args&... args) {
  Kernel::template run<Isa::kBase>(args...);
}
#endif

// exp(x) for x <= 0 (and NaN), as a branch-free sequence that vectorises: Cody-Waite range
// reduction x = n ln2 + r, |r| <= ln2 / 2, Cephes' degree-6 polynomial for exp(r) (about 1 ulp),
// and 2^n built in the exponent bits. x < -87 (whose exp is below float's smallest normal) and
// -inf give exactly 0. The softmax only exponentiates score - max <= 0.
GAT_PYG_INLINE float exp_nonpositive(float x) {
  const float clamped = std::max(x, -87.0f);   // NaN stays NaN (std::max returns x)
  // n = round(x / ln2) by adding and subtracting 1.5 * 2^23 (exact for |x / ln2| < 2^22).
  const float shifter = 12582912.0f;
  const float n = (clamped * 1.44269504088896341f + shifter) - shifter;
  float r = clamped - n * 0.693359375f;   // ln2 split in a short high part and the rest
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  // n >= -126 here, so 2^n is a normal float.
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

GAT_PYG_INLINE double exp_nonpositive(double x) { return std::exp(x); }

// Eight floats as one value (GCC / Clang vector extensions). The [8 heads, 8 channels] rows of
// the common layer shape are eight of them, a one-head row of up to 8 channels is one (partially
// filled), and the compiler maps each operation onto the function's target (two SSE registers,
// one AVX register, half an AVX-512 one). Written as loops over 64 values indexed by head, the
// same arithmetic is left to the SLP vectoriser, which in these kernels often gives up.
#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 12)
#define GAT_PYG_VEC8 1
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

GAT_PYG_INLINE f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

GAT_PYG_INLINE f32x8 widen8(u16x8 bits) {   // bfloat16 is float's upper half
  const u32x8 wide = __builtin_convertvector(bits, u32x8) << 16;
  f32x8 v;
  std::memcpy(&v, &wide, sizeof v);
  return v;
}

GAT_PYG_INLINE f32x8 load8(const c10::BFloat16* p) {
  u16x8 bits;
  std::memcpy(&bits, p, sizeof bits);
  return widen8(bits);
}

GAT_PYG_INLINE void store8(float* p, f32x8 v) { std::memcpy(p, &v, sizeof v); }

GAT_PYG_INLINE f32x8 splat8(float x) { return f32x8{} + x; }

// [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7] (AVX's hadd).
GAT_PYG_INLINE f32x8 pair_sums(f32x8 a, f32x8 b) {
  return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
         __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
}

// [sum(p[0]), ..., sum(p[7])]: eight horizontal sums at once, pairwise.
GAT_PYG_INLINE f32x8 sums8(const f32x8* p) {
  const f32x8 a = pair_sums(pair_sums(p[0], p[1]), pair_sums(p[2], p[3]));
  const f32x8 b = pair_sums(pair_sums(p[4], p[5]), pair_sums(p[6], p[7]));
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
}

// The sum of one vector's lanes, pairwise.
GAT_PYG_INLINE float sum8(f32x8 v) {
  const f32x8 a = v + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  const f32x8 b = a + __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5);
  return b[0] + b[1];
}

GAT_PYG_INLINE f32x8 leaky_relu8(f32x8 z, float slope) { return z > 0.0f ? z : z * slope; }
GAT_PYG_INLINE f32x8 leaky_relu_grad8(f32x8 z, float slope) {
  return z > 0.0f ? splat8(1.0f) : splat8(slope);
}

// The first n <= 8 values of a row, the other lanes 0. With `whole` the caller vouches that
// 8 values may be read (the row is not at the end of its tensor): one load and a select;
// otherwise the n values are copied one by one.
template <typename T>
GAT_PYG_INLINE f32x8 load_first(const T* p, int64_t n, bool whole) {
  if (whole) {
    const i32x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
    return lane < static_cast<int32_t>(n) ? load8(p) : f32x8{};
  }
  T v[8] = {};
  for (int64_t k = 0; k < n; ++k) v[k] = p[k];
  return load8(v);
}
#else
#define GAT_PYG_VEC8 0
#endif

// A growable, 64-byte aligned scratch array; contents are not initialised and are not kept when
// it grows.
template <typename T>
class Buffer {
 public:
  T* ensure(int64_t n) {
    if (n > capacity_ || !data_) {
      capacity_ = std::max<int64_t>({n, 2 * capacity_, 64});
      const size_t bytes = (static_cast<size_t>(capacity_) * sizeof(T) + 63) / 64 * 64;
      void* p = std::aligned_alloc(64, bytes);
      if (p == nullptr) throw std::bad_alloc();
      data_.reset(static_cast<T*>(p));
    }
    return data_.get();
  }
  T* data() const { return data_.get(); }

  // Frees the array if it holds more than `bytes`.
  void trim(int64_t bytes) {
    if (capacity_ * static_cast<int64_t>(sizeof(T)) > bytes) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  int64_t capacity_ = 0;
};

}  // namespace gat_pyg
