// The recurrent part of one LSTM layer over a whole sequence, forward and backward, as two TensorFlow CPU ops.
//
// legacy_lstm/native_ops.py compiles this file on the user's machine (g++, TensorFlow's own headers and flags) and
// loads it; legacy_lstm/fast_lstm.py uses it, when OPTIONS["native"] asks for it, in place of its two while loops.
// The maths is fast_lstm's (the same as BasicLSTMCell's with the forget bias folded into the bias):
//
//   forward, per step t:  z = proj[t] + h_{t-1} W_h;  i, ci, f, o = sigmoid(z_i), tanh(z_j), sigmoid(z_f), sigmoid(z_o)
//                         c_t = f * c_{t-1} + i * ci;  h_t = o * tanh(c_t)
//   backward, t = T-1..0: dh = dh_carry + dhs[t];  co = tanh(c_t);  dc += dh * o * (1 - co^2)
//                         dz = [dc ci i (1-i), dc i (1-ci^2), dc c_{t-1} f (1-f), dh co o (1-o)]
//                         dc = dc * f;  dh_carry = dz W_h^T
//
// Everything over all time steps at once (the input projection, the weight, bias and input gradients) stays in
// TensorFlow's own GEMMs outside these ops. Inside, each step is split over the op's intra-op threads by blocks
// of units: a thread multiplies only its units' columns of W_h (the four gates' column blocks, Eigen's
// single-threaded GEMM) and applies the gate maths to them at once (Eigen's vectorised logistic and tanh, the
// functors of TensorFlow's Sigmoid and Tanh kernels), so a step needs one hand-over between threads: the forward
// needs all of h_{t-1} for the next product, the backward all of dz_t for dh.
#define EIGEN_USE_THREADS

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Block = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstBlock = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

// fn(first_unit, end_unit) on blocks of units (multiples of 16 floats), at most one block per thread of the op's
// intra-op pool: blocks 1.. are scheduled on the pool, block 0 runs on the calling thread; returns when all are done.
template <typename Fn>
void ForEachUnitBlock(const Eigen::ThreadPoolDevice& device, int64_t units, const Fn& fn) {
  const int64_t wanted = std::max<int64_t>(1, std::min<int64_t>(device.numThreads(), units / 32));
  const int64_t per = ((units + wanted - 1) / wanted + 15) / 16 * 16;
  const int64_t parts = per == 0 ? 1 : (units + per - 1) / per;
  if (parts <= 1) {
    fn(int64_t{0}, units);
    return;
  }
  Eigen::Barrier done(static_cast<unsigned int>(parts - 1));
  for (int64_t p = 1; p < parts; ++p) {
    device.enqueueNoNotification([&fn, &done, p, per, units] {
      fn(p * per, std::min<int64_t>(units, (p + 1) * per));
      done.Notify();
    });
  }
  fn(int64_t{0}, per);
  done.Wait();
}

absl::Status ForwardShape(InferenceContext* c) {
  ShapeHandle proj, wh, c0, h0;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &proj));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &wh));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 2, &c0));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 2, &h0));
  DimensionHandle steps = c->Dim(proj, 0), batch, units = c->Dim(wh, 0), steps_plus_one;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(proj, 1), c->Dim(c0, 0), &batch));
  TF_RETURN_IF_ERROR(c->Merge(batch, c->Dim(h0, 0), &batch));
  TF_RETURN_IF_ERROR(c->Merge(units, c->Dim(c0, 1), &units));
  TF_RETURN_IF_ERROR(c->Merge(units, c->Dim(h0, 1), &units));
  TF_RETURN_IF_ERROR(c->Add(steps, 1, &steps_plus_one));
  DimensionHandle gates = c->Dim(wh, 1);
  TF_RETURN_IF_ERROR(c->Merge(gates, c->Dim(proj, 2), &gates));
  c->set_output(0, c->MakeShape({steps, batch, units}));
  c->set_output(1, c->MakeShape({steps_plus_one, batch, units}));
  c->set_output(2, c->MakeShape({steps, batch, gates}));
  c->set_output(3, c->MakeShape({batch, units}));
  return absl::OkStatus();
}

absl::Status BackwardShape(InferenceContext* c) {
  ShapeHandle gates, cs, dhs, wh;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &gates));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 3, &cs));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 3, &dhs));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(5), 2, &wh));
  c->set_output(0, gates);
  c->set_output(1, c->input(3));
  c->set_output(2, c->input(4));
  return absl::OkStatus();
}

// The ops' checks of the sizes they read (the shape functions cannot see dynamic ones).
#define REQUIRE(ctx, cond, message) OP_REQUIRES(ctx, cond, absl::InvalidArgumentError(message))

}  // namespace

REGISTER_OP("LegacyLstmSeqForward")
    .Input("proj: float")     // [T, B, 4U]: x_t W_x + bias for every step
    .Input("wh: float")       // [U, 4U]
    .Input("c0: float")       // [B, U]
    .Input("h0: float")       // [B, U]
    .Output("hs: float")      // [T, B, U]: h_1 .. h_T
    .Output("cs: float")      // [T + 1, B, U]: c_0 .. c_T
    .Output("gates: float")   // [T, B, 4U]: the activations i, ci, f, o of every step
    .Output("h_last: float")  // [B, U]: h_T (h_0 when T = 0)
    .SetShapeFn(ForwardShape);

REGISTER_OP("LegacyLstmSeqBackward")
    .Input("gates: float")    // [T, B, 4U] from the forward
    .Input("cs: float")       // [T + 1, B, U] from the forward
    .Input("dhs: float")      // [T, B, U]: the gradient of every step's output h_t
    .Input("dc_last: float")  // [B, U]
    .Input("dh_last: float")  // [B, U]
    .Input("wh: float")       // [U, 4U]
    .Output("dz: float")      // [T, B, 4U]: the gradient of every step's pre-activations
    .Output("dc0: float")     // [B, U]
    .Output("dh0: float")     // [B, U]
    .SetShapeFn(BackwardShape);

class LegacyLstmSeqForwardOp : public OpKernel {
 public:
  explicit LegacyLstmSeqForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& proj = ctx->input(0);
    const Tensor& wh = ctx->input(1);
    const Tensor& c0 = ctx->input(2);
    const Tensor& h0 = ctx->input(3);
    REQUIRE(ctx, proj.dims() == 3 && wh.dims() == 2 && c0.dims() == 2 && h0.dims() == 2, "ranks 3, 2, 2, 2");
    const int64_t steps = proj.dim_size(0), batch = proj.dim_size(1), units = wh.dim_size(0), width = 4 * units;
    REQUIRE(ctx, wh.dim_size(1) == width && proj.dim_size(2) == width, "proj and wh must be [T, B, 4U], [U, 4U]");
    REQUIRE(ctx, c0.dim_size(0) == batch && c0.dim_size(1) == units && h0.shape() == c0.shape(),
            "c0 and h0 must be [B, U]");
    Tensor *hs, *cs, *gates, *h_last;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({steps, batch, units}), &hs));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({steps + 1, batch, units}), &cs));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({steps, batch, width}), &gates));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({batch, units}), &h_last));

    const Eigen::ThreadPoolDevice& device = ctx->eigen_cpu_device();
    const int64_t state = batch * units;
    float* c_all = cs->flat<float>().data();
    float* h_all = hs->flat<float>().data();
    float* g_all = gates->flat<float>().data();
    const float* p_all = proj.flat<float>().data();
    const float* w = wh.flat<float>().data();
    std::copy_n(c0.flat<float>().data(), state, c_all);
    const float* h_prev = h0.flat<float>().data();

    for (int64_t t = 0; t < steps; ++t) {
      const float* p = p_all + t * batch * width;
      float* g = g_all + t * batch * width;
      const float* c_prev = c_all + t * state;
      float* c_new = c_all + (t + 1) * state;
      float* h_new = h_all + t * state;
      ForEachUnitBlock(device, units, [=](int64_t u0, int64_t u1) {
        const int64_t n = u1 - u0;
        ConstBlock h(h_prev, batch, units, Eigen::OuterStride<>(units));
        for (int64_t gate = 0; gate < 4; ++gate) {  // z[:, gate block] = h_{t-1} W_h[:, gate block]
          Block z(g + gate * units + u0, batch, n, Eigen::OuterStride<>(width));
          z.noalias() = h * ConstBlock(w + gate * units + u0, units, n, Eigen::OuterStride<>(width));
        }
        for (int64_t r = 0; r < batch; ++r) {
          float* a = g + r * width + u0;
          const float* q = p + r * width + u0;
          Row i(a, n), ci(a + units, n), f(a + 2 * units, n), o(a + 3 * units, n);
          i = (i + ConstRow(q, n)).logistic();
          ci = (ci + ConstRow(q + units, n)).tanh();
          f = (f + ConstRow(q + 2 * units, n)).logistic();
          o = (o + ConstRow(q + 3 * units, n)).logistic();
          Row c(c_new + r * units + u0, n);
          c = f * ConstRow(c_prev + r * units + u0, n) + i * ci;
          Row(h_new + r * units + u0, n) = o * c.tanh();
        }
      });
      h_prev = h_new;
    }
    std::copy_n(h_prev, state, h_last->flat<float>().data());
  }
};

class LegacyLstmSeqBackwardOp : public OpKernel {
 public:
  explicit LegacyLstmSeqBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gates = ctx->input(0);
    const Tensor& cs = ctx->input(1);
    const Tensor& dhs = ctx->input(2);
    const Tensor& dc_last = ctx->input(3);
    const Tensor& dh_last = ctx->input(4);
    const Tensor& wh = ctx->input(5);
    REQUIRE(ctx, gates.dims() == 3 && cs.dims() == 3 && dhs.dims() == 3 && wh.dims() == 2, "ranks 3, 3, 3, 2");
    const int64_t steps = gates.dim_size(0), batch = gates.dim_size(1), units = wh.dim_size(0), width = 4 * units;
    REQUIRE(ctx, gates.dim_size(2) == width && wh.dim_size(1) == width, "gates and wh must be [T, B, 4U], [U, 4U]");
    REQUIRE(ctx, cs.dim_size(0) == steps + 1 && cs.dim_size(1) == batch && cs.dim_size(2) == units,
            "cs must be [T + 1, B, U]");
    REQUIRE(ctx, dhs.dim_size(0) == steps && dhs.dim_size(1) == batch && dhs.dim_size(2) == units,
            "dhs must be [T, B, U]");
    REQUIRE(ctx, dc_last.dims() == 2 && dc_last.dim_size(0) == batch && dc_last.dim_size(1) == units &&
                     dh_last.shape() == dc_last.shape(), "dc_last and dh_last must be [B, U]");
    Tensor *dz, *dc0, *dh0;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({steps, batch, width}), &dz));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, units}), &dc0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch, units}), &dh0));

    const Eigen::ThreadPoolDevice& device = ctx->eigen_cpu_device();
    const int64_t state = batch * units;
    float* dc = dc0->flat<float>().data();  // the running dc and dh live in the outputs
    float* dh = dh0->flat<float>().data();
    std::copy_n(dc_last.flat<float>().data(), state, dc);
    std::copy_n(dh_last.flat<float>().data(), state, dh);
    const float* g_all = gates.flat<float>().data();
    const float* c_all = cs.flat<float>().data();
    const float* dh_out_all = dhs.flat<float>().data();
    float* dz_all = dz->flat<float>().data();
    const float* w = wh.flat<float>().data();

    // dh[:, units u0..u1] = dz_{t+1} W_h[u0..u1, :]^T: a thread's block of dh needs the whole of dz_{t+1}
    auto recurrent = [=](const float* dz_next, int64_t u0, int64_t n) {
      Block(dh + u0, batch, n, Eigen::OuterStride<>(units)).noalias() =
          ConstBlock(dz_next, batch, width, Eigen::OuterStride<>(width)) *
          ConstBlock(w + u0 * width, n, width, Eigen::OuterStride<>(width)).transpose();
    };
    // step t (t = T-1 first) on each thread's units: dh of step t+1's product (none at T-1: dh_last), then the
    // element-wise gradients of step t; the last hand-over computes dh0 from dz_0
    for (int64_t t = steps - 1; t >= 0; --t) {
      const float* dz_next = t + 1 < steps ? dz_all + (t + 1) * batch * width : nullptr;
      ForEachUnitBlock(device, units, [=](int64_t u0, int64_t u1) {
        const int64_t n = u1 - u0;
        if (dz_next != nullptr) recurrent(dz_next, u0, n);
        const float* g = g_all + t * batch * width;
        const float* c_now = c_all + (t + 1) * state;
        const float* c_prev = c_all + t * state;
        const float* dh_out = dh_out_all + t * state;
        float* d = dz_all + t * batch * width;
        for (int64_t r = 0; r < batch; ++r) {
          const float* a = g + r * width + u0;
          ConstRow i(a, n), ci(a + units, n), f(a + 2 * units, n), o(a + 3 * units, n);
          float* e = d + r * width + u0;
          Row d_i(e, n), d_ci(e + units, n), d_f(e + 2 * units, n), d_o(e + 3 * units, n);
          Row dc_r(dc + r * units + u0, n);
          Row dh_r(dh + r * units + u0, n);
          dh_r += ConstRow(dh_out + r * units + u0, n);
          d_o = ConstRow(c_now + r * units + u0, n).tanh();  // co, kept in the o slot until its gradient replaces it
          dc_r += dh_r * o * (1.0f - d_o * d_o);
          d_i = dc_r * ci * i * (1.0f - i);
          d_ci = dc_r * i * (1.0f - ci * ci);
          d_f = dc_r * ConstRow(c_prev + r * units + u0, n) * f * (1.0f - f);
          d_o = dh_r * d_o * o * (1.0f - o);
          dc_r *= f;
        }
      });
    }
    if (steps > 0 && units > 0) {  // dh0 = dz_0 W_h^T
      ForEachUnitBlock(device, units, [=](int64_t u0, int64_t u1) { recurrent(dz_all, u0, u1 - u0); });
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("LegacyLstmSeqForward").Device(tensorflow::DEVICE_CPU), LegacyLstmSeqForwardOp);
REGISTER_KERNEL_BUILDER(Name("LegacyLstmSeqBackward").Device(tensorflow::DEVICE_CPU), LegacyLstmSeqBackwardOp);
