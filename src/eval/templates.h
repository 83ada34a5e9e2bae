// templates.h — from task records to the text the model scores (SPEC §6, "GPT-3 style templates;
// the continuation is what is scored"). notes/eval.md lists every template with an example.
//
// Every task becomes a list of TaskItems. An item has 2+ candidates; a candidate is a context and
// a continuation whose concatenation is the full text of that choice. Which of its tokens count is
// scoring.h's business (common-prefix rule, or the continuation), not the template's.
//
//   HellaSwag   context "activity_label: ctx_a Ctx_b"  continuation " " + ending
//               (the text form stores "activity_label: ctx" with ctx = ctx_a + " " + ctx_b and
//               does not say where ctx_b starts, so its context line is used as stored)
//   StoryCloze  context "s1 s2 s3 s4"                   continuation " " + ending
//   PIQA        context goal                            continuation " " + solution
//   OpenBookQA  context stem                            continuation " " + choice
//   WinoGrande  full mode: context = the sentence before the blank, continuation = the option and
//               the rest of the sentence (the paper's framework: under the common-prefix rule the
//               option and everything after it are scored);
//               partial mode: context = the sentence up to and including the option, continuation
//               = the text after the blank, scored alone (lm-evaluation-harness "partial scoring":
//               both candidates score the same tokens)
//   ReCoRD      context = passage (article and @highlight lines joined, see record_passage), and
//               continuation " " + query with @placeholder replaced by each candidate entity
//
// Few-shot demonstrations are items written out with their gold answer (TaskItem::demo).
// Left out: task instructions or "Question:/Answer:" wrappers (the paper primes with plain text).
#pragma once
#include <string>
#include <vector>

#include "eval/readers.h"

namespace moe {

struct Candidate {
  std::string context;       // text the model conditions on
  std::string continuation;  // text whose tokens are scored (see scoring.h for the exact span)
};

struct TaskItem {
  std::vector<Candidate> candidates;      // 2 or more
  int gold = -1;                          // index of the correct candidate (ReCoRD: first match)
  std::vector<std::string> answers;       // ReCoRD: gold answer texts (EM / F1 are taken on them)
  std::vector<std::string> labels;        // ReCoRD: the entity behind each candidate
  bool continuation_only = false;         // score the continuation even under the common-prefix
                                          // rule (WinoGrande partial mode)
  std::string demo;                       // the item filled with its gold answer (few-shot)
  std::string where;                      // FILE:LINE of the record
};

enum class WinoGrandeMode { Full, Partial };
WinoGrandeMode parse_winogrande_mode(const std::string& s);  // "full" | "partial"
const char* winogrande_mode_name(WinoGrandeMode m);

TaskItem hellaswag_item(const HellaSwagRecord& r);
TaskItem piqa_item(const PiqaRecord& r);
TaskItem winogrande_item(const WinoGrandeRecord& r, WinoGrandeMode mode);
TaskItem storycloze_item(const StoryClozeRecord& r);
TaskItem openbookqa_item(const OpenBookQARecord& r);
TaskItem record_item(const ReCoRDRecord& r);

// HellaSwag's preprocessing of the original jsonl fields, as the data folder's text form was made
// (MANIFEST §3): drop bracketed markers like "[header]", "[step]", "[title]", collapse runs of
// spaces, trim. "[title] Foo bar [step] Do" -> "Foo bar Do".
std::string hellaswag_clean(const std::string& s);
// First letter upper-cased (ASCII): "the man" -> "The man".
std::string capitalize_first(const std::string& s);
// ReCoRD's passage for the prompt: the article, then each @highlight line as a sentence (a '.' is
// added when it has no final punctuation), joined by single spaces.
//   "Article.\n@highlight\nPoint one\n@highlight\nPoint two" -> "Article. Point one. Point two."
std::string record_passage(const std::string& raw);

}  // namespace moe
