// flag_table.cpp — THE table of flags for train, eval and finetune, and the --model presets.
//
// Everything the programs accept on the command line is one row below; the parser, --help and
// the effective-config table are computed from these rows (see flags.h for why). To add a flag:
// add a row, read it in the program with Flags::get_*; --help picks it up by itself, and
// test_flags.cpp checks the row (default in range, choices, presets). notes/flags.md has more.
//
// Columns: name, type, default, help, choices (Enum only), min, max, which ends of the range are
// included, programs (T = train, E = eval, F = finetune), --help group, and optionally a list of
// per-program help texts for a flag whose meaning differs between the programs (the `help`
// column is then the meaning of the first program that has the flag). An Int range is finite
// and fits an int32 (kIntMax rather than infinity), so the programs can cast values to int.
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
constexpr double kIntMax = 2147483647.0;  // the upper end of an Int flag that has no natural one

// ---- what a shared flag means to eval and finetune, where that differs from train ---------

const ProgramHelp kSeedHelp[] = {
    {E, "seed of --task generate's sampling; few-shot demonstrations do not use it (their draws "
     "always use seeds 0..--draws-1, as in the paper)", nullptr},
    {F, "random seed of the classification head's initialisation, the order of training examples "
     "and dropout (--carve-seed splits the data)", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kOutDirHelp[] = {
    {E, "folder for the results JSON (eval_<task>.json), --log-samples files and --speedup plots",
     "<ckpt folder>/eval, or runs/eval without --ckpt"},
    {F, "folder for best.bin (the best dev epoch), results.json and finetune_log.jsonl",
     "<ckpt folder>/finetune-<task>"},
    {0, nullptr, nullptr}};
const ProgramHelp kOverwriteHelp[] = {
    {F, "start a fine-tune in an --out-dir that already holds one (best.bin, results.json), "
     "replacing it (without this, such a run is refused)", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kLogEveryHelp[] = {
    {F, "print and log the running training loss every N optimizer steps", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kDropoutHelp[] = {
    {F, "dropout probability while fine-tuning (replaces the checkpoint's; off when scoring dev)",
     nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kCkptHelp[] = {
    {F, "pretrained checkpoint to fine-tune (written by train)", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kDataDirHelp[] = {
    {F, "data folder holding the default task files (<dir>/sst2, boolq, mnli; its MANIFEST.md "
     "lists them), read when --train-file / --dev-file are not given", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kBatchSizeHelp[] = {
    {E, "sequences scored per forward pass: memory and speed only, except that an MoE model's "
     "expert capacity grows with the batch (see --eval-capacity-fraction)", nullptr},
    {F, "training examples per optimizer step; dev examples are scored in batches of this size",
     nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kLrHelp[] = {
    {F, "peak learning rate of fine-tuning (linear warmup to it, then linear decay to 0 at the "
     "end of --epochs)", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kWarmupHelp[] = {
    {F, "warmup length as a fraction of all fine-tuning steps (every epoch counted)", nullptr},
    {0, nullptr, nullptr}};
const ProgramHelp kTaskHelp[] = {
    {E, "all (the six tasks in the paper's settings, then perplexity), ppl, generate (continue "
     "--prompt), or a comma-separated list of "
     "hellaswag,piqa,winogrande,storycloze,openbookqa,record", "all"},
    {F, "boolq, mnli or sst2 (SPEC §7; templates in notes/finetune.md)", "sst2"},
    {0, nullptr, nullptr}};
const ProgramHelp kEvalCapacityHelp[] = {
    {F, "MoE expert capacity when scoring dev examples, as a fraction of the batch's tokens (SPEC "
     "§3 step 2); 0 = the training formula", nullptr},
    {0, nullptr, nullptr}};

const FlagSpec kFlags[] = {
    // ---- run: what to do, where to write, how long ----------------------------------------
    {"help", BOOL, "false", "print this help and exit", nullptr, NA, NA, CLOSED, TEF, "run"},
    {"config", STR, "", "read key=value lines from FILE (overridden by the command line)",
     nullptr, NA, NA, CLOSED, TEF, "run"},
    {"seed", INT, "1", "random seed for initialisation, data order and dropout", nullptr, 0,
     2147483648.0, RIGHT_OPEN, TEF, "run", kSeedHelp},
    {"out-dir", STR, "runs/default", "folder for the training log, checkpoints and loss plot",
     nullptr, NA, NA, CLOSED, TEF, "run", kOutDirHelp},
    {"threads", INT, "0", "CPU threads; 0 = all cores", nullptr, 0, 256, CLOSED, TEF, "run"},
    {"device", ENUM, "auto", "where the model runs: auto = the GPU when one is visible, else the "
     "CPU", "auto|cpu|cuda", NA, NA, CLOSED, TEF, "run"},
    {"tf32", BOOL, "true", "let the GPU's matrix products round f32 inputs to TF32 (tensor cores; "
     "~2x faster, ~1e-3 relative error per product); no effect on the CPU", nullptr, NA, NA,
     CLOSED, TEF, "run"},
    {"transport", ENUM, "auto", "how MPI ranks exchange tensors (mpirun -np W): auto = the fastest "
     "that works here, host = MPI on host buffers, cuda-ipc = GPU peer copies on one host, "
     "mpi-cuda = device pointers to a CUDA-aware MPI (notes/distributed.md)",
     "auto|host|cuda-ipc|mpi-cuda", NA, NA, CLOSED, TEF, "run"},
    {"log-every", INT, "10", "print and log the training loss every N steps", nullptr, 1, kIntMax,
     CLOSED, TF, "run", kLogEveryHelp},
    {"eval-every", INT, "100", "evaluate on the validation set every N steps; 0 = only at the end",
     nullptr, 0, kIntMax, CLOSED, T, "run"},
    {"eval-batches", INT, "8", "validation batches per evaluation", nullptr, 1, kIntMax, CLOSED, T,
     "run"},
    {"ckpt-every", INT, "200", "save a checkpoint every N steps; 0 = only at the end", nullptr, 0,
     kIntMax, CLOSED, T, "run"},
    {"resume", STR, "", "continue training from this checkpoint file", nullptr, NA, NA, CLOSED, T,
     "run"},
    {"overwrite", BOOL, "false", "start a new run in an --out-dir that already holds a "
     "checkpoint, replacing it (without this, such a run is refused)", nullptr, NA, NA, CLOSED,
     TF, "run", kOverwriteHelp},
    {"steps", INT, "300", "optimizer steps to train for", nullptr, 1, kIntMax, CLOSED, T, "run"},
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
     nullptr, 0, 1, RIGHT_OPEN, TF, "model", kDropoutHelp},
    {"ckpt", STR, "", "checkpoint file to evaluate (written by train or finetune)", nullptr, NA,
     NA, CLOSED, E | F, "model", kCkptHelp},

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
    {"batch-size", INT, "16", "sequences per optimizer step", nullptr, 1, 1048576, CLOSED, TEF,
     "optim", kBatchSizeHelp},
    {"lr", FLOAT, "1e-3", "peak learning rate (linear warmup to it, then linear decay to 0)",
     nullptr, 0, 1, LEFT_OPEN, TF, "optim", kLrHelp},
    {"warmup", FLOAT, "0.05", "warmup length as a fraction of the run's steps", nullptr, 0, 1,
     CLOSED, TF, "optim", kWarmupHelp},
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
     "gradient|lr", NA, NA, CLOSED, TF, "moe"},

    // ---- eval (priming evaluation, SPEC §6, §8)
    {"data-dir", STR, "../shared/data", "data folder of the evaluation sets and perplexity "
     "corpora, laid out as its MANIFEST.md describes", nullptr, NA, NA, CLOSED, E | F, "data",
     kDataDirHelp},
    {"shots", INT, "-1",
     "demonstrations per prompt; -1 = the paper's setting (0 for hellaswag/piqa/record, "
     "--fewshot-k for the others)", nullptr, -1, 4096, CLOSED, E, "eval"},
    {"fewshot-k", INT, "32", "k of the few-shot tasks when --shots is -1", nullptr, 1, 4096,
     CLOSED, E, "eval"},
    {"draws", INT, "0", "random draws of demonstrations (seeds 0..N-1); 0 = 25 when k > 0",
     nullptr, 0, 1000, CLOSED, E, "eval"},
    {"limit", INT, "0", "quick runs: score only the first N items of each task (perplexity: the "
     "first N windows of each file); recorded in the results; 0 = all", nullptr, 0, kIntMax,
     CLOSED, E, "eval"},
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
    {"check-data", STR, "",
     "check that every evaluation file in DIR parses with its official count", nullptr, NA, NA,
     CLOSED, E, "eval"},
    {"speedup", BOOL, "false", "compute the speedup factor from results files (--dense, --moe)",
     nullptr, NA, NA, CLOSED, E, "eval"},
    {"dense", STR, "", "results JSON files of the dense series, comma-separated", nullptr, NA, NA,
     CLOSED, E, "eval"},
    {"moe", STR, "", "results JSON files of the MoE series, comma-separated", nullptr, NA, NA,
     CLOSED, E, "eval"},

    // ---- finetune (SPEC §7)
    {"task", STR, "", "what to evaluate or fine-tune on; empty = the program's default task",
     nullptr, NA, NA, CLOSED, E | F, "task", kTaskHelp},
    {"train-file", STR, "", "training examples: jsonl or tsv with a header, .xz is read via xz -dc",
     nullptr, NA, NA, CLOSED, F, "finetune"},
    {"dev-file", STR, "", "dev examples, scored after every epoch (same formats as --train-file)",
     nullptr, NA, NA, CLOSED, F, "finetune"},
    {"carve-train", INT, "0",
     "split the ONE file given (--train-file or --dev-file) into N train examples and the rest "
     "as dev, by a seeded shuffle (BoolQ has no train split here); 0 = off",
     nullptr, 0, kIntMax, CLOSED, F, "finetune"},
    {"carve-seed", INT, "1234", "seed of the --carve-train shuffle (kept apart from --seed so "
     "that runs with different seeds share one dev set)", nullptr, 0, 2147483648.0, RIGHT_OPEN,
     F, "finetune"},
    {"epochs", INT, "3", "passes over the training set; 0 = only score the checkpoint on dev",
     nullptr, 0, 10000, CLOSED, F, "finetune"},
    {"limit-train", INT, "0", "use only the first N training examples (quick runs); 0 = all",
     nullptr, 0, kIntMax, CLOSED, F, "finetune"},
    {"limit-dev", INT, "0", "use only the first N dev examples; 0 = all", nullptr, 0, kIntMax,
     CLOSED, F, "finetune"},
    {"freeze-experts", BOOL, "false", "do not train MoE expert weights (blocks.*.moe.experts.*); "
     "a dense model has none", nullptr, NA, NA, CLOSED, F, "finetune"},
    {"freeze-router", BOOL, "false", "do not train MoE gate weights (blocks.*.moe.gate.*); a "
     "dense model has none", nullptr, NA, NA, CLOSED, F, "finetune"},
    {"aux-loss-weight", FLOAT, "0.01", "weight of the MoE load-balancing loss added to the "
     "classification loss; 0 drops it", nullptr, 0, INF, CLOSED, F, "finetune"},
    {"eval-capacity-fraction", FLOAT, "0", "MoE expert capacity at evaluation as a fraction of "
     "the batch's tokens (SPEC §3 step 2); 0 = the training formula", nullptr, 0, 1, CLOSED, E | F,
     "moe", kEvalCapacityHelp},
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
