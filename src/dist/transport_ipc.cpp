// transport_ipc.cpp — the cuda-ipc transport: MPI carries the handles and the barriers, the GPUs
// move the bytes (see transport_ipc.h for the protocol).
#include "dist/transport_ipc.h"

#include <mpi.h>

#include <vector>

#include "core/tensor.h"
#include "dist/dist.h"
#include "dist/mpi_check.h"
#include "dist/transport.h"
#include "ops/elementwise.h"

namespace moe {

namespace {

// A device buffer of this rank that every peer has mapped: mine = my pointer, peer[q] = rank q's
// buffer as mapped here (peer[my rank] = mine).
class Mailbox {
 public:
  ~Mailbox() { release(); }
  // Grows to at least `bytes`; collective (every rank calls it with the same size).
  void ensure(size_t bytes) {
    if (bytes <= size_) return;
    release();
    const int W = dist().world, me = dist().rank;
    mine_ = ipc_alloc(bytes);
    size_ = bytes;
    const IpcHandle h = ipc_export(mine_);
    std::vector<IpcHandle> all(static_cast<size_t>(W));
    MPI_CHECK(MPI_Allgather(&h, sizeof h, MPI_BYTE, all.data(), sizeof h, MPI_BYTE,
                            dist_comm()));
    peer_.assign(static_cast<size_t>(W), nullptr);
    for (int q = 0; q < W; ++q) peer_[q] = q == me ? mine_ : ipc_open(all[q]);
  }
  char* mine() const { return static_cast<char*>(mine_); }
  char* peer(int q) const { return static_cast<char*>(peer_[static_cast<size_t>(q)]); }

 private:
  void release() {
    for (size_t q = 0; q < peer_.size(); ++q)
      if (peer_[q] != mine_) ipc_close(peer_[q]);
    peer_.clear();
    ipc_free(mine_);
    mine_ = nullptr;
    size_ = 0;
  }
  void* mine_ = nullptr;
  size_t size_ = 0;
  std::vector<void*> peer_;
};

// Every rank's queued GPU work is done, and every rank got here.
void all_ranks_idle() {
  ipc_sync();
  MPI_CHECK(MPI_Barrier(dist_comm()));
}

class CudaIpcTransport : public Transport {
 public:
  CudaIpcTransport() {
    CHECK(dist().world <= kMaxIpcRanks, "--transport cuda-ipc supports up to ", kMaxIpcRanks,
          " ranks, got ", dist().world, ". HINT: use --transport host");
  }
  std::string name() const override { return "cuda-ipc"; }

  void all_to_all(const Tensor& send, Tensor& recv) override {
    const int W = dist().world, me = dist().rank;
    CHECK(send.device().is_cuda() && recv.device().is_cuda() && send.size(0) == W &&
              recv.shape() == send.shape() && send.is_contiguous() && recv.is_contiguous(),
          "cuda-ipc all-to-all: send ", send.desc(), " and recv ", recv.desc(),
          " must be contiguous GPU tensors of shape (W, ...)");
    const size_t bytes = static_cast<size_t>(send.numel()) * dtype_size(send.dtype());
    const size_t chunk = bytes / static_cast<size_t>(W);
    inbox_.ensure(bytes);
    all_ranks_idle();  // peers finished reading their inboxes; my send buffer is complete
    const char* src = static_cast<const char*>(send.raw_data());
    for (int k = 0; k < W; ++k) {  // start with the next rank, so the copy engines spread out
      const int r = (me + k) % W;
      ipc_copy(inbox_.peer(r) + static_cast<size_t>(me) * chunk,
               src + static_cast<size_t>(r) * chunk, chunk);
    }
    all_ranks_idle();  // every chunk has landed in every inbox
    ipc_copy(recv.raw_data(), inbox_.mine(), bytes);
  }

  void all_reduce(Tensor& x, double scale) override {
    const int W = dist().world, me = dist().rank;
    CHECK(x.device().is_cuda() && x.dtype() == DType::F32 && x.is_contiguous(),
          "cuda-ipc all-reduce: ", x.desc(), " must be a contiguous f32 GPU tensor");
    const int64_t n = x.numel();
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    inbox_.ensure(bytes);
    sums_.ensure(bytes);
    all_ranks_idle();
    ipc_copy(inbox_.mine(), x.raw_data(), bytes);  // publish my contribution
    all_ranks_idle();
    const int64_t per = (n + W - 1) / W;  // rank r owns [r*per, min(n, (r+1)*per))
    const int64_t lo = std::min<int64_t>(n, me * per), hi = std::min<int64_t>(n, lo + per);
    PeerPointers srcs{};
    for (int q = 0; q < W; ++q) srcs.p[q] = reinterpret_cast<const float*>(inbox_.peer(q));
    ipc_sum_slices(reinterpret_cast<float*>(sums_.mine()) + lo, srcs, W, lo, hi - lo);
    all_ranks_idle();
    for (int q = 0; q < W; ++q) {  // gather every owner's slice
      const int64_t qlo = std::min<int64_t>(n, q * per), qhi = std::min<int64_t>(n, qlo + per);
      ipc_copy(static_cast<float*>(x.raw_data()) + qlo,
               reinterpret_cast<const float*>(sums_.peer(q)) + qlo,
               static_cast<size_t>(qhi - qlo) * sizeof(float));
    }
    if (scale != 1.0) scale_inplace(x, scale);
  }

 private:
  Mailbox inbox_, sums_;
};

}  // namespace

std::unique_ptr<Transport> make_cuda_ipc_transport() {
  return std::make_unique<CudaIpcTransport>();
}

}  // namespace moe
