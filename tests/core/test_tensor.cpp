// Tensor: shapes, strides, views that share storage, copies, dtype conversion, error messages.
#include <gtest/gtest.h>

#include "core/tensor.h"

using namespace moe;

TEST(Tensor, ContiguousStridesAndNumel) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_THROW(t.size(3), Error);
}

TEST(Tensor, ViewsShareStorage) {
  std::vector<float> v(6);
  for (int i = 0; i < 6; ++i) v[i] = static_cast<float>(i);
  Tensor t = Tensor::from_f32(v, {2, 3});  // [[0 1 2] [3 4 5]]
  Tensor r = t.view({3, -1});              // (3, 2)
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.at({2, 1}), 5.0);
  Tensor tr = t.transpose_view(0, 1);      // (3, 2), strides (1, 3)
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.at({2, 1}), 5.0);
  EXPECT_EQ(tr.at({1, 0}), 1.0);
  EXPECT_EQ(tr.contiguous().to_f32_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor sl = t.slice_view(1, 1, 3);       // columns 1..2
  EXPECT_EQ(sl.to_f32_vector(), (std::vector<float>{1, 2, 4, 5}));
  t.data<float>()[4] = 40.0f;              // writes through every view
  EXPECT_EQ(r.at({2, 0}), 40.0);
  EXPECT_EQ(tr.at({1, 1}), 40.0);
  EXPECT_EQ(sl.at({1, 0}), 40.0);
  Tensor c = t.clone();
  t.data<float>()[0] = -1.0f;
  EXPECT_EQ(c.at({0, 0}), 0.0);            // a clone does not
}

TEST(Tensor, ViewErrorsNameTheShapes) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.view({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(4, 2)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.transpose_view(0, 1).view({6}), Error);  // non-contiguous
  EXPECT_THROW(t.slice_view(0, 1, 3), Error);
}

TEST(Tensor, DtypeConversionAndChecks) {
  Tensor f = Tensor::from_f64({1.5, -2.25}, {2});
  EXPECT_EQ(f.to(DType::F32).to_f32_vector(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(f.to(DType::I32).to_i32_vector(), (std::vector<int32_t>{1, -2}));
  EXPECT_THROW(f.data<float>(), Error);   // wrong dtype requested
  Tensor i = Tensor::from_i32({1, 2}, {2});
  EXPECT_THROW(i.set_requires_grad(true), Error);  // ids cannot require grad
  EXPECT_DOUBLE_EQ(Tensor::full({}, 3.5).item(), 3.5);
}

TEST(Tensor, CopyFromStridedSource) {
  Tensor t = Tensor::from_f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor dst = Tensor::empty({3, 2});
  dst.copy_from(t.transpose_view(0, 1));
  EXPECT_EQ(dst.to_f32_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_THROW(dst.copy_from(t), Error);  // shape mismatch
}
