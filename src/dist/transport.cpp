// transport.cpp — the host and mpi-cuda transports and the choice among the three
// (transport.h; the cuda-ipc one is transport_ipc.cpp).
#include "dist/transport.h"

#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // OpenMPI: MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <limits>

#include "core/device.h"
#include "dist/dist.h"
#include "dist/mpi_check.h"
#include "dist/transport_ipc.h"
#include "ops/elementwise.h"

namespace moe {

namespace {

MPI_Datatype mpi_type(DType dt) {
  switch (dt) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT;
  }
  return MPI_BYTE;
}

void check_exchange(const Tensor& send, const Tensor& recv) {
  const int W = dist().world;
  CHECK(send.dim() >= 1 && send.size(0) == W, "all-to-all: the leading dimension of ",
        send.desc(), " must be the world size ", W);
  CHECK(recv.shape() == send.shape() && recv.dtype() == send.dtype() &&
            recv.device() == send.device() && recv.is_contiguous() && send.is_contiguous(),
        "all-to-all: send ", send.desc(), " and recv ", recv.desc(), " must match");
}

// MPI counts are int: exchange in pieces of at most 2^30 elements per peer.
void alltoall_host(const void* send, void* recv, int64_t chunk, DType dt) {
  // ASSIGNMENT 9 BEGIN alltoall_host
  const size_t es = dtype_size(dt);
  const int64_t piece = int64_t(1) << 30;
  if (chunk <= piece) {
    MPI_CHECK(MPI_Alltoall(send, static_cast<int>(chunk), mpi_type(dt), recv,
                           static_cast<int>(chunk), mpi_type(dt), dist_comm()));
    return;
  }
  // Large chunks: one exchange per piece of every chunk, through a datatype whose extent is a
  // whole chunk, so that "1 element per rank" addresses piece `off` of chunk r.
  for (int64_t off = 0; off < chunk; off += piece) {
    const int64_t n = std::min(piece, chunk - off);
    MPI_Datatype block, strided;
    MPI_CHECK(MPI_Type_contiguous(static_cast<int>(n), mpi_type(dt), &block));
    MPI_CHECK(MPI_Type_create_resized(block, 0, static_cast<MPI_Aint>(chunk * es), &strided));
    MPI_CHECK(MPI_Type_commit(&strided));
    MPI_CHECK(MPI_Alltoall(static_cast<const char*>(send) + off * es, 1, strided,
                           static_cast<char*>(recv) + off * es, 1, strided, dist_comm()));
    MPI_Type_free(&strided);
    MPI_Type_free(&block);
  }
  // ASSIGNMENT 9 END
}

void allreduce_host(void* x, int64_t n, DType dt) {
  const int64_t piece = int64_t(1) << 30;
  for (int64_t off = 0; off < n; off += piece) {
    const int64_t m = std::min(piece, n - off);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(x) + off * dtype_size(dt),
                            static_cast<int>(m), mpi_type(dt), MPI_SUM, dist_comm()));
  }
}

// A pinned host buffer that grows when a larger exchange comes, allocated once otherwise.
class PinnedBuffer {
 public:
  ~PinnedBuffer() { cuda_pinned_free(p_); }
  void* get(size_t bytes) {
    if (bytes > size_) {
      cuda_pinned_free(p_);
      p_ = cuda_pinned_alloc(bytes);
      size_ = bytes;
    }
    return p_;
  }

 private:
  void* p_ = nullptr;
  size_t size_ = 0;
};

// MPI on host memory; device tensors go through two pinned buffers (send and receive).
class HostTransport : public Transport {
 public:
  std::string name() const override { return "host"; }
  void all_to_all(const Tensor& send, Tensor& recv) override {
    // ASSIGNMENT 9 BEGIN HostTransport::all_to_all
    check_exchange(send, recv);
    const int64_t chunk = send.numel() / dist().world;
    const size_t bytes = static_cast<size_t>(send.numel()) * dtype_size(send.dtype());
    if (send.device().is_cpu()) {
      alltoall_host(send.raw_data(), recv.raw_data(), chunk, send.dtype());
      return;
    }
    void* hs = send_buf_.get(bytes);
    void* hr = recv_buf_.get(bytes);
    copy_bytes(hs, cpu(), send.raw_data(), send.device(), bytes);
    alltoall_host(hs, hr, chunk, send.dtype());
    copy_bytes(recv.raw_data(), recv.device(), hr, cpu(), bytes);
    // ASSIGNMENT 9 END
  }
  void all_reduce(Tensor& x, double scale) override {
    CHECK(x.is_contiguous(), "all-reduce: ", x.desc(), " must be contiguous");
    const size_t bytes = static_cast<size_t>(x.numel()) * dtype_size(x.dtype());
    if (x.device().is_cpu()) {
      allreduce_host(x.raw_data(), x.numel(), x.dtype());
    } else {
      void* h = send_buf_.get(bytes);
      copy_bytes(h, cpu(), x.raw_data(), x.device(), bytes);
      allreduce_host(h, x.numel(), x.dtype());
      copy_bytes(x.raw_data(), x.device(), h, cpu(), bytes);
    }
    if (scale != 1.0) scale_inplace(x, scale);
  }

 private:
  PinnedBuffer send_buf_, recv_buf_;
};

// Device pointers straight to a CUDA-aware MPI library.
class MpiCudaTransport : public Transport {
 public:
  std::string name() const override { return "mpi-cuda"; }
  void all_to_all(const Tensor& send, Tensor& recv) override {
    check_exchange(send, recv);
    cuda_synchronize();  // MPI reads device memory outside our stream's order
    alltoall_host(send.raw_data(), recv.raw_data(), send.numel() / dist().world, send.dtype());
  }
  void all_reduce(Tensor& x, double scale) override {
    cuda_synchronize();
    allreduce_host(x.raw_data(), x.numel(), x.dtype());
    if (scale != 1.0) scale_inplace(x, scale);
  }
};

// One rank: the exchanges are copies (chunk 0 to rank 0) and the sum is x itself.
class SelfTransport : public Transport {
 public:
  explicit SelfTransport(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void all_to_all(const Tensor& send, Tensor& recv) override {
    check_exchange(send, recv);
    recv.copy_from(send);
  }
  void all_reduce(Tensor& x, double scale) override {
    if (scale != 1.0) scale_inplace(x, scale);
  }

 private:
  std::string name_;
};

}  // namespace

CommStats& comm_stats() {
  static CommStats stats;
  return stats;
}

bool mpi_cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return dist().mpi && MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

std::string auto_transport_name(Device dev) {
  if (dev.is_cpu()) return "host";
  if (mpi_cuda_aware()) return "mpi-cuda";
  if (dist().world > 1 && dist().local_size == dist().world) return "cuda-ipc";
  return "host";
}

std::unique_ptr<Transport> make_transport(const std::string& choice_in, Device dev) {
  const std::string choice = choice_in == "auto" ? auto_transport_name(dev) : choice_in;
  CHECK(choice == "host" || choice == "cuda-ipc" || choice == "mpi-cuda",
        "--transport must be auto, host, cuda-ipc or mpi-cuda, got '", choice_in, "'");
  if (choice != "host")
    CHECK(dev.is_cuda(), "--transport ", choice, " moves GPU buffers, but this run is on the ",
          "CPU. HINT: use --transport host (or auto)");
  if (choice == "mpi-cuda")
    CHECK(mpi_cuda_aware(), "--transport mpi-cuda: this MPI library does not report CUDA "
          "support (MPIX_Query_cuda_support). HINT: use --transport cuda-ipc or host");
  if (choice == "cuda-ipc")
    CHECK(dist().local_size == dist().world, "--transport cuda-ipc needs every rank on one host, ",
          "but ", dist().local_size, " of ", dist().world, " ranks share this one. HINT: use "
          "--transport host (or mpi-cuda) across hosts");
  if (dist().world == 1) return std::make_unique<SelfTransport>(choice);
  if (choice == "host") return std::make_unique<HostTransport>();
  if (choice == "mpi-cuda") return std::make_unique<MpiCudaTransport>();
  return make_cuda_ipc_transport();
}

}  // namespace moe
