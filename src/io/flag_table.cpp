// flag_table.cpp — THE table of flags for train, eval and finetune, and the --model presets.
//
// Everything the programs accept on the command line is one row below; the parser, --help and
// the effective-config table are computed from these rows (see flags.h for why). To add a flag:
// add a row, read it in the program with Flags::get_*; --help picks it up by itself, and
// test_flags.cpp checks the row (default in range, choices, presets). notes/flags.md has more.
//
// Columns: name, type, default, help, choices (Enum only), min, max, which ends of the range are
// included, programs (T = train, E = eval, F = finetune), --help group.
// The presets follow the paper's dense ladder (SPEC §2, Artetxe et al. 2021); `tiny` and
// `small` are this project's own sizes for one CPU or one GPU.
#include <iterator>
#include <limits>

#include "io/flags.h"

namespace moe {
namespace {

// Short names so that each row fits on a line or two.
constexpr unsigned T = PROG_TRAIN, E = PROG_EVAL, F = PROG_FINETUNE, TF = T | F, TEF = PROG_ALL;
constexpr FlagType INT = FlagType::Int, FLOAT = FlagType::Float, BOOL = FlagType::Bool,
                   STR = FlagType::String, ENUM = FlagType::Enum;
constexpr Interval CLOSED = Interval::Closed, LEFT_OPEN = Interval::LeftOpen,
                   RIGHT_OPEN = Interval::RightOpen, OPEN = Interval::Open;
constexpr double INF = std::numeric_limits<double>::infinity();
constexpr double NA = std::numeric_limits<double>::quiet_NaN();  // no range (non-numeric flag)

const FlagSpec kFlags[] = {
    // ---- run: what to do, where to write, how long ----------------------------------------
    {"help", BOOL, "false", "print this help and exit", nullptr, NA, NA, CLOSED, TEF, "run"},
    {"config", STR, "", "read key=value lines from FILE (overridden by the command line)",
     nullptr, NA, NA, CLOSED, TEF, "run"},
    {"seed", INT, "1", "random seed for initialisation, data order and dropout", nullptr, 0,
     2147483648.0, RIGHT_OPEN, TEF, "run"},
    {"out-dir", STR, "runs/default", "folder for logs, checkpoints and results", nullptr, NA, NA,
     CLOSED, TEF, "run"},
    {"threads", INT, "0", "CPU threads; 0 = all cores", nullptr, 0, 256, CLOSED, TEF, "run"},
    {"device", ENUM, "auto", "where the model runs: auto = the GPU when one is visible, else the "
     "CPU", "auto|cpu|cuda", NA, NA, CLOSED, TEF, "run"},
    {"tf32", BOOL, "true", "let the GPU's matrix products round f32 inputs to TF32 (tensor cores; "
     "~2x faster, ~1e-3 relative error per product); no effect on the CPU", nullptr, NA, NA,
     CLOSED, TEF, "run"},
    {"log-every", INT, "10", "print and log the training loss every N steps", nullptr, 1, INF,
     CLOSED, TF, "run"},
    {"eval-every", INT, "100", "evaluate on the validation set every N steps; 0 = only at the end",
     nullptr, 0, INF, CLOSED, T, "run"},
    {"eval-batches", INT, "8", "validation batches per evaluation", nullptr, 1, INF, CLOSED, T,
     "run"},
    {"ckpt-every", INT, "200", "save a checkpoint every N steps; 0 = only at the end", nullptr, 0,
     INF, CLOSED, T, "run"},
    {"resume", STR, "", "continue training from this checkpoint file", nullptr, NA, NA, CLOSED, T,
     "run"},
    {"overwrite", BOOL, "false", "start a new run in an --out-dir that already holds a "
     "checkpoint, replacing it (without this, such a run is refused)", nullptr, NA, NA, CLOSED,
     TF, "run"},
    {"steps", INT, "300", "optimizer steps to train for", nullptr, 1, INF, CLOSED, T, "run"},
    {"max-minutes", FLOAT, "0", "stop and save after this much wall time; 0 = no limit", nullptr,
     0, INF, CLOSED, T, "run"},

    // ---- model: the architecture (SPEC §2); --model sets the others ------------------------
    {"model", ENUM, "tiny", "model size preset: sets the flags marked 'set by --model'",
     "tiny|small|125m|355m|1.3b|2.7b|6.7b|13b", NA, NA, CLOSED, T, "model"},
    {"n-layer", INT, "4", "transformer layers (L)", nullptr, 1, 256, CLOSED, T, "model"},
    {"d-model", INT, "128", "model width (C); the FFN is 4C wide", nullptr, 8, 65536, CLOSED, T,
     "model"},
    {"n-head", INT, "4", "attention heads (NH); must divide d-model", nullptr, 1, 1024, CLOSED, T,
     "model"},
    {"seq-len", INT, "64", "tokens per training sequence (T)", nullptr, 2, 65536, CLOSED, T,
     "model"},
    {"dropout", FLOAT, "0.1", "dropout probability (embedding, attention, residual, experts)",
     nullptr, 0, 1, RIGHT_OPEN, TF, "model"},
    {"ckpt", STR, "", "checkpoint file to load", nullptr, NA, NA, CLOSED, E | F, "model"},

    // ---- data: corpus and tokenizer (SPEC §5) ----------------------------------------------
    {"data", STR, "", "UTF-8 text file or directory; empty = the embedded synthetic corpus",
     nullptr, NA, NA, CLOSED, T, "data"},
    {"val-data", STR, "", "validation text file or directory; empty = hold out --val-fraction",
     nullptr, NA, NA, CLOSED, T, "data"},
    {"val-fraction", FLOAT, "0.05", "fraction of --data held out for validation", nullptr, 0, 0.5,
     CLOSED, T, "data"},
    {"bpe-dir", STR, "",
     "folder with encoder.json + vocab.bpe (e.g. ../shared/data/gpt2_bpe); empty = train a BPE "
     "of --vocab-size on the data",
     nullptr, NA, NA, CLOSED, T, "data"},
    {"vocab-size", INT, "2048", "vocabulary size of a BPE trained on the data", nullptr, 260,
     65536, CLOSED, T, "data"},
    {"cache-dir", STR, "data/cache", "folder for tokenized-corpus caches", nullptr, NA, NA, CLOSED,
     T, "data"},

    // ---- optim: Adam with decoupled weight decay, linear warmup and decay (SPEC §5) --------
    {"batch-size", INT, "16", "sequences per batch (per optimizer step when training)", nullptr, 1, 1048576, CLOSED, TEF,
     "optim"},
    {"lr", FLOAT, "1e-3", "peak learning rate (linear warmup to it, then linear decay to 0)",
     nullptr, 0, 1, LEFT_OPEN, TF, "optim"},
    {"warmup", FLOAT, "0.05", "warmup length as a fraction of the run's steps", nullptr, 0, 1, CLOSED, TF,
     "optim"},
    {"weight-decay", FLOAT, "0.01", "decoupled weight decay (AdamW)", nullptr, 0, 1, CLOSED, TF,
     "optim"},
    {"beta1", FLOAT, "0.9", "Adam beta1", nullptr, 0, 1, RIGHT_OPEN, TF, "optim"},
    {"beta2", FLOAT, "0.98", "Adam beta2", nullptr, 0, 1, RIGHT_OPEN, TF, "optim"},
    {"adam-eps", FLOAT, "1e-8", "Adam epsilon", nullptr, 0, 1, OPEN, TF, "optim"},
    {"clip-grad", FLOAT, "0", "clip the global gradient norm to this; 0 = off", nullptr, 0, INF,
     CLOSED, TF, "optim"},

    // ---- moe (train; the MoE counterpart of any preset, SPEC §3-4)
    {"moe-experts", INT, "0", "experts per MoE layer (E); 0 = the dense model", nullptr, 0, 4096,
     CLOSED, T, "moe"},
    {"moe-freq", INT, "2", "layer i is MoE iff (i+1) % moe-freq == 0 (2 = every other layer)",
     nullptr, 1, 256, CLOSED, T, "moe"},
    {"capacity-factor", FLOAT, "1", "training capacity 2*ceil(N/E) times this", nullptr, 0, 64,
     LEFT_OPEN, T, "moe"},
    {"moe-top2-policy", ENUM, "all", "how the second expert is chosen (SPEC §3 step 4)",
     "all|sampling|random", NA, NA, CLOSED, T, "moe"},
    {"moe-loss-weight", FLOAT, "0.01", "weight of the summed load-balancing losses", nullptr, 0,
     INF, CLOSED, T, "moe"},
    {"moe-expert-scaling", ENUM, "gradient",
     "expert update scaling: fairseq's gradient scaling or the 1/sqrt(E) learning rate (SPEC §4)",
     "gradient|lr", NA, NA, CLOSED, T, "moe"},

    // ---- eval (priming evaluation, SPEC §6, §8)
    {"data-dir", STR, "../shared/data", "data folder laid out as its MANIFEST.md describes",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"shots", INT, "-1",
     "demonstrations per prompt; -1 = the paper's setting (0 for hellaswag/piqa/record, "
     "--fewshot-k for the others)", nullptr, -1, 4096, CLOSED, E, "eval"},
    {"fewshot-k", INT, "32", "k of the few-shot tasks when --shots is -1", nullptr, 1, 4096,
     CLOSED, E, "eval"},
    {"draws", INT, "0", "random draws of demonstrations (seeds 0..N-1); 0 = 25 when k > 0",
     nullptr, 0, 1000, CLOSED, E, "eval"},
    {"limit", INT, "0", "evaluate only the first N items (perplexity: N windows); 0 = all",
     nullptr, 0, INF, CLOSED, E, "eval"},
    {"scoring", ENUM, "mean",
     "candidate score: mean log-prob after the common prefix (paper), sum, or sum per character",
     "mean|sum|char", NA, NA, CLOSED, E, "eval"},
    {"winogrande-mode", ENUM, "full",
     "full: score the option and the rest of the sentence; partial: only the text after the blank",
     "full|partial", NA, NA, CLOSED, E, "eval"},
    {"winogrande-train", ENUM, "xl", "WinoGrande training size the demonstrations come from",
     "xs|s|m|l|xl", NA, NA, CLOSED, E, "eval"},
    {"storycloze-split", ENUM, "test", "StoryCloze split to evaluate (the other gives the demos)",
     "test|val", NA, NA, CLOSED, E, "eval"},
    {"openbookqa-split", ENUM, "test", "OpenBookQA split to evaluate", "test|dev", NA, NA, CLOSED,
     E, "eval"},
    {"hellaswag-file", STR, "",
     "HellaSwag file: the 6-line text form or the original jsonl; empty = the data folder's",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"record-file", STR, "", "SuperGLUE ReCoRD jsonl (not in the data folder; skipped if empty)",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"ppl-data", STR, "",
     "perplexity text files, comma-separated, the first in-domain; empty = gutenberg valid, "
     "wikitext2 raw test, reuters", nullptr, NA, NA, CLOSED, E, "eval"},
    {"log-samples", BOOL, "false", "also write one JSON line per item (prompt, choices, scores, "
     "prediction, gold) to <out-dir>/samples_<task>.jsonl", nullptr, NA, NA, CLOSED, E, "eval"},
    {"prompt", STR, "", "--task generate: the text to continue", nullptr, NA, NA, CLOSED, E,
     "generate"},
    {"max-new-tokens", INT, "64", "--task generate: tokens to generate", nullptr, 1, 1048576,
     CLOSED, E, "generate"},
    {"temperature", FLOAT, "1", "--task generate: sampling temperature; 0 = greedy", nullptr, 0,
     100, CLOSED, E, "generate"},
    {"top-k", INT, "0", "--task generate: sample among the k most likely tokens; 0 = all",
     nullptr, 0, 1048576, CLOSED, E, "generate"},
    {"skip-bad", BOOL, "false", "skip and count malformed records instead of stopping", nullptr,
     NA, NA, CLOSED, E, "eval"},
    {"check-data", STR, "", "check that every evaluation file in DIR parses with its official count",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"speedup", BOOL, "false", "compute the speedup factor from results files (--dense, --moe)",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"dense", STR, "", "results JSON files of the dense series, comma-separated", nullptr, NA, NA,
     CLOSED, E, "eval"},
    {"moe", STR, "", "results JSON files of the MoE series, comma-separated", nullptr, NA, NA,
     CLOSED, E, "eval"},

    // ---- finetune (SPEC §7)
    {"task", STR, "",
     "eval: all (the six tasks in the paper's settings + perplexity; the default), ppl, "
     "generate (continue --prompt), or a "
     "comma-separated list of hellaswag,piqa,winogrande,storycloze,openbookqa,record; "
     "finetune: boolq, mnli or sst2 (the default; SPEC §7, templates in notes/finetune.md)",
     nullptr, NA, NA, CLOSED, E | F, "task"},
    {"train-file", STR, "", "training examples: jsonl or tsv with a header, .xz is read via xz -dc",
     nullptr, NA, NA, CLOSED, F, "finetune"},
    {"dev-file", STR, "", "dev examples, scored after every epoch (same formats as --train-file)",
     nullptr, NA, NA, CLOSED, F, "finetune"},
    {"carve-train", INT, "0",
     "split the ONE file given (--train-file or --dev-file) into N train examples and the rest "
     "as dev, by a seeded shuffle (BoolQ has no train split here); 0 = off",
     nullptr, 0, INF, CLOSED, F, "finetune"},
    {"carve-seed", INT, "1234", "seed of the --carve-train shuffle (kept apart from --seed so "
     "that runs with different seeds share one dev set)", nullptr, 0, 2147483648.0, RIGHT_OPEN,
     F, "finetune"},
    {"epochs", INT, "3", "passes over the training set; 0 = only score the checkpoint on dev",
     nullptr, 0, 10000, CLOSED, F, "finetune"},
    {"limit-train", INT, "0", "use only the first N training examples (quick runs); 0 = all",
     nullptr, 0, INF, CLOSED, F, "finetune"},
    {"limit-dev", INT, "0", "use only the first N dev examples; 0 = all", nullptr, 0, INF, CLOSED,
     F, "finetune"},
    {"freeze-experts", BOOL, "false", "do not train MoE expert weights (blocks.*.moe.experts.*); "
     "a dense model has none", nullptr, NA, NA, CLOSED, F, "finetune"},
    {"freeze-router", BOOL, "false", "do not train MoE gate weights (blocks.*.moe.gate.*); a "
     "dense model has none", nullptr, NA, NA, CLOSED, F, "finetune"},
    {"aux-loss-weight", FLOAT, "0.01", "weight of the MoE load-balancing loss added to the "
     "classification loss; 0 drops it", nullptr, 0, INF, CLOSED, F, "finetune"},
    {"eval-capacity-fraction", FLOAT, "0", "MoE expert capacity at evaluation as a fraction of "
     "the batch's tokens (SPEC §3 step 2); 0 = the training formula", nullptr, 0, 1, CLOSED, E | F,
     "finetune"},
};

// The --model presets. The table defaults of n-layer..seq-len equal `tiny`, the default preset,
// so that --help shows the sizes a plain `train` gets.
// Batch sizes of the paper's ladder are in tokens (0.5M..2M, notes/flags.md); --batch-size here
// counts sequences per step, so the ladder presets leave it alone.
const Preset kPresets[] = {
    {"tiny", "n-layer=4 d-model=128 n-head=4 seq-len=64 batch-size=16 lr=2e-3"},
    {"small", "n-layer=6 d-model=256 n-head=8 seq-len=128 batch-size=16 lr=1e-3"},
    {"125m", "n-layer=12 d-model=768 n-head=12 seq-len=2048 lr=6e-4"},
    {"355m", "n-layer=24 d-model=1024 n-head=16 seq-len=2048 lr=3e-4"},
    {"1.3b", "n-layer=24 d-model=2048 n-head=32 seq-len=2048 lr=2e-4"},
    {"2.7b", "n-layer=32 d-model=2560 n-head=32 seq-len=2048 lr=1.6e-4"},
    {"6.7b", "n-layer=32 d-model=4096 n-head=32 seq-len=2048 lr=1.2e-4"},
    {"13b", "n-layer=40 d-model=5120 n-head=40 seq-len=2048 lr=1e-4"},
};

const FlagTable kTable = {kFlags, std::size(kFlags), kPresets, std::size(kPresets), "model"};

}  // namespace

const FlagTable& builtin_flag_table() { return kTable; }

}  // namespace moe
