// encode.cpp — templates, tokenization with left truncation, padded batches (see encode.h).
#include "finetune/encode.h"

#include <algorithm>
#include <exception>

#include "core/parallel.h"

namespace moe {

std::string normalize_text(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();  // a space only between words: leading ones are dropped
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;  // trailing spaces were never written
}

TemplateLines apply_template(const TaskInfo& task, const Example& ex) {
  TemplateLines t;
  t.first = normalize_text(ex.text_a);
  const std::string b = normalize_text(ex.text_b);
  switch (task.kind) {
    case TaskKind::BoolQ:
      t.second = "question: " + b + ((b.empty() || b.back() != '?') ? "?" : "");
      break;
    case TaskKind::MNLI:
      t.second = "hypothesis: " + b;
      break;
    case TaskKind::SST2:
      break;  // one line
  }
  return t;
}

std::vector<int32_t> join_and_truncate(const std::vector<int32_t>& first_ids,
                                       const std::vector<int32_t>& second_ids, int32_t eos,
                                       int max_len, bool* truncated) {
  CHECK(max_len >= 1, "join_and_truncate: max_len must be at least 1, got ", max_len);
  // tail = </s> [second </s>]: the part kept whole when possible.
  std::vector<int32_t> tail{eos};
  if (!second_ids.empty()) {
    tail.insert(tail.end(), second_ids.begin(), second_ids.end());
    tail.push_back(eos);
  }
  const int64_t L = max_len, nf = static_cast<int64_t>(first_ids.size()),
                nt = static_cast<int64_t>(tail.size());
  *truncated = nf + nt > L;
  std::vector<int32_t> ids;
  if (nt > L) {  // the second line alone is too long: keep its last L tokens
    ids.assign(tail.end() - L, tail.end());
    return ids;
  }
  const int64_t keep = std::min(nf, L - nt);  // tokens of the first line that fit, from its end
  ids.assign(first_ids.end() - keep, first_ids.end());
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

EncodedExample encode_example(const BpeTokenizer& tok, const TaskInfo& task, const Example& ex,
                              int max_len) {
  const TemplateLines t = apply_template(task, ex);
  EncodedExample e;
  e.label = ex.label;
  e.ids = join_and_truncate(tok.encode(t.first), t.second.empty() ? std::vector<int32_t>{}
                                                                   : tok.encode(t.second),
                            tok.eos_id(), max_len, &e.truncated);
  return e;
}

std::vector<EncodedExample> encode_examples(const BpeTokenizer& tok, const TaskInfo& task,
                                            const std::vector<Example>& examples, int max_len) {
  // BPE of 67k SST-2 sentences takes seconds on one core; examples are independent, each thread
  // writes its own slots, so the result does not depend on the thread count.
  // An exception must not escape a pool thread (that would terminate the program), so each
  // chunk keeps its first error and the caller rethrows the one of the lowest chunk.
  std::vector<EncodedExample> out(examples.size());
  std::vector<std::exception_ptr> errors(examples.size());
  parallel_for(static_cast<int64_t>(examples.size()), [&](int64_t lo, int64_t hi) {
    try {
      for (int64_t i = lo; i < hi; ++i) out[i] = encode_example(tok, task, examples[i], max_len);
    } catch (...) {
      errors[lo] = std::current_exception();
    }
  }, 64);
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

Batch make_batch(const std::vector<EncodedExample>& data, const std::vector<int64_t>& order,
                 int64_t begin, int64_t end, int32_t pad_id) {
  CHECK(begin < end && end <= static_cast<int64_t>(order.size()), "make_batch: bad range [",
        begin, ", ", end, ") of ", order.size(), " rows");
  const int64_t B = end - begin;
  int64_t Lmax = 1;
  for (int64_t r = begin; r < end; ++r)
    Lmax = std::max<int64_t>(Lmax, static_cast<int64_t>(data[order[r]].ids.size()));
  Batch batch;
  batch.ids = Tensor::full({B, Lmax}, pad_id, DType::I32);  // (B, Lmax)
  batch.lengths = Tensor::empty({B}, DType::I32);           // (B,)
  batch.labels = Tensor::empty({B}, DType::I32);            // (B,)
  int32_t* ids = batch.ids.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    const EncodedExample& e = data[order[begin + b]];
    CHECK(!e.ids.empty(), "make_batch: an encoded example has no tokens");
    std::copy(e.ids.begin(), e.ids.end(), ids + b * Lmax);
    batch.lengths.data<int32_t>()[b] = static_cast<int32_t>(e.ids.size());
    batch.labels.data<int32_t>()[b] = e.label;
  }
  return batch;
}

Batch make_share_batch(const std::vector<EncodedExample>& data, const std::vector<int64_t>& order,
                       int64_t begin, int64_t end, int64_t share_begin, int64_t share_end,
                       int64_t slot, int32_t pad_id) {
  CHECK(begin < end && end <= static_cast<int64_t>(order.size()) && 0 <= share_begin &&
            share_begin <= share_end && share_end <= end - begin &&
            share_end - share_begin <= slot && slot >= 1,
        "make_share_batch: bad share [", share_begin, ", ", share_end, ") of slot ", slot,
        " in rows [", begin, ", ", end, ") of ", order.size());
  int64_t Lmax = 1;  // over the whole batch: every rank gets the same shape
  for (int64_t r = begin; r < end; ++r)
    Lmax = std::max<int64_t>(Lmax, static_cast<int64_t>(data[order[r]].ids.size()));
  Batch batch;
  batch.ids = Tensor::full({slot, Lmax}, pad_id, DType::I32);  // (slot, Lmax)
  batch.lengths = Tensor::zeros({slot}, DType::I32);           // dummy rows: 0
  batch.labels = Tensor::full({slot}, -1, DType::I32);         // dummy rows: ignored
  int32_t* ids = batch.ids.data<int32_t>();
  for (int64_t b = 0; b < share_end - share_begin; ++b) {
    const EncodedExample& e = data[order[begin + share_begin + b]];
    CHECK(!e.ids.empty(), "make_share_batch: an encoded example has no tokens");
    std::copy(e.ids.begin(), e.ids.end(), ids + b * Lmax);
    batch.lengths.data<int32_t>()[b] = static_cast<int32_t>(e.ids.size());
    batch.labels.data<int32_t>()[b] = e.label;
  }
  return batch;
}

}  // namespace moe
