// encode.h — from a task example to token ids, and from token ids to right-padded batches.
// SPEC §7 (inputs of the three fine-tuning tasks); templates in notes/finetune.md.
//
// Templates. Every input is written the way the pretraining text looked (SPEC §5): text lines,
// each ending with the `</s>` token. The first line is the long text, the second line (if any)
// the short one with a cue word, and the final `</s>` is the token whose hidden state the head
// reads (it has seen the whole input):
//   BoolQ  {passage} </s> question: {question}? </s>
//   MNLI   {premise} </s> hypothesis: {hypothesis} </s>
//   SST-2  {sentence} </s>
// Fields are normalised first: tabs and line breaks become spaces, runs of spaces collapse to one
// and the ends are trimmed (the data folder's two MNLI files differ exactly in that, MANIFEST
// §6.1; SST-2 lines end with a stray space). A '?' is added to a question that lacks one.
//
// Truncation to the context T: the tail (</s> + second line + </s>) is kept whole and tokens are
// dropped from the LEFT of the first line, so the question/hypothesis and the end of the passage
// survive. Only if the tail alone exceeds T is the first line dropped entirely and the tail itself
// cut from the left.
//
// What it leaves out: packing several examples in one row, other templates (one per task).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/bpe.h"
#include "finetune/task_data.h"

namespace moe {

// The two text lines of an example after normalisation (second may be empty: SST-2).
struct TemplateLines {
  std::string first;   // passage / premise / sentence
  std::string second;  // "question: ...?" / "hypothesis: ..." / ""
};
TemplateLines apply_template(const TaskInfo& task, const Example& ex);

// Trim, turn \t \r \n into spaces and collapse runs of spaces.
std::string normalize_text(const std::string& s);

// first_ids + [eos] (+ second_ids + [eos] when second_ids is non-empty), cut to at most max_len
// tokens by the rule in the file comment. *truncated tells whether anything was dropped.
std::vector<int32_t> join_and_truncate(const std::vector<int32_t>& first_ids,
                                       const std::vector<int32_t>& second_ids, int32_t eos,
                                       int max_len, bool* truncated);

struct EncodedExample {
  std::vector<int32_t> ids;  // 1 <= size <= max_len, ends with </s> unless cut
  int label = 0;
  bool truncated = false;
};

EncodedExample encode_example(const BpeTokenizer& tok, const TaskInfo& task, const Example& ex,
                              int max_len);
std::vector<EncodedExample> encode_examples(const BpeTokenizer& tok, const TaskInfo& task,
                                            const std::vector<Example>& examples, int max_len);

// A batch of sequences padded on the right to the longest one of the batch (not to T: short
// batches run faster). Why no attention mask is needed: attention is causal, so the state at
// position t depends on tokens 0..t only. The head reads position lengths[b]-1, the last real
// token, and padding sits strictly after it: padding can never change what the head sees.
struct Batch {
  Tensor ids;      // (B, Lmax) i32, padded with pad_id
  Tensor lengths;  // (B,) i32, real tokens per row, in [1, Lmax]
  Tensor labels;   // (B,) i32, class ids
};

// Rows order[begin], ..., order[end-1] of `data`.
Batch make_batch(const std::vector<EncodedExample>& data, const std::vector<int64_t>& order,
                 int64_t begin, int64_t end, int32_t pad_id);

// One rank's share of the batch order[begin .. end) (notes/finetune.md "Under mpirun"): `slot`
// rows, of which the first (share_end - share_begin) are the batch's rows share_begin ..
// share_end-1 (offsets into [begin, end)) and the rest dummy rows: length 0, label -1 (ignored
// by the loss), all padding. Every rank pads to the longest row of the WHOLE batch, so all
// ranks run the same (slot, Lmax) shape, which the all-to-all of expert parallelism needs; on one
// rank with slot = end - begin it is make_batch exactly.
Batch make_share_batch(const std::vector<EncodedExample>& data, const std::vector<int64_t>& order,
                       int64_t begin, int64_t end, int64_t share_begin, int64_t share_end,
                       int64_t slot, int32_t pad_id);

}  // namespace moe
