"""A real transformer compressed end to end: all-MiniLM-L6-v2 (the sentence encoder, 22.7M
parameters), distilled into fewer layers, pruned (heads, feed-forward neurons), quantized
(int8 layers, 4-bit embeddings; 4-bit GPTQ rows run by int8 kernels with 3-bit embeddings;
weight-only 4-bit GPTQ beside), every stage measured as deployed against the original float32
model on held-out sentences.

Stages (trials of netshrink.bench.tasks.transformer, resumable):
1. distill: a 3-layer student initialized from the teacher's layers 0, 3 and 5, trained on
   the corpus's training sentences to the teacher's embeddings (cosine) and its last layer's
   attention distributions and value relations (MiniLM), by netshrink.distill (the unpruned
   reference);
2. prune: all six of the teacher's layers with a third of their heads and half of their
   feed-forward neurons removed (taylor: the first-order change of the distillation loss),
   then distilled the same way, with every layer's output matched to its teacher layer
   (hints), for the distillation's and the recovery's steps together (the earlier order,
   distil, prune, recover, is a prune trial with the distill trial as its base);
3. GPTQ against round-to-nearest on the original model, 4 and 3 bits;
4. measure: file bytes, agreement with the original (mean and 5th-percentile cosine, top-10
   neighbour overlap among 2,000 sentences, Spearman of pairwise similarities), latency at
   batch 1 and 32 (32-64 tokens, 2 threads, every stage alternated in one run) beside PyTorch
   float32 and onnxruntime's own dynamic int8 model.

Anchors (published, not reproduced here): TinyBERT-4 (Jiao et al. 2020) 7.5x smaller and 9.4x
faster than BERT-base at 96.8% of its GLUE score; DistilBERT (Sanh et al. 2019) 40% smaller,
60% faster, 97%; sentence-transformers' 3-layer paraphrase-MiniLM-L3-v2 62.29 against 68.06
on their 14-task average; their int8 ONNX export of this model 23 MB, about 3x faster.
"""

from __future__ import annotations

from netshrink.bench import TrialSpec
from netshrink.bench.report import write_csv
from netshrink.bench.tasks import transformer as tasks
from netshrink.reproduce import ReproOptions
from netshrink.reproduce.template import Run

MODEL, DATA = "minilm", tasks.CORPUS
TARGETS = ("at least 10x smaller file than the float32 model and at least 5x faster at batch "
           "32 (same run), with mean cosine >= 0.95 and top-10 neighbour overlap >= 0.8 on "
           "held-out sentences; the aim beyond: TinyBERT's 7.5x smaller / 9.4x faster")
ANCHORS = ("TinyBERT-4 (Jiao et al. 2020): 7.5x smaller, 9.4x faster than BERT-base, 96.8% "
           "of its GLUE score; DistilBERT (Sanh et al. 2019): 40% smaller, 60% faster, 97%; "
           "sentence-transformers' paraphrase-MiniLM-L3-v2: 62.29 against 68.06 on their "
           "14-task average; their int8 ONNX export of all-MiniLM-L6-v2: 23 MB, about 3x "
           "faster on short texts. Published figures, on other tasks and machines.")


def settings(options: ReproOptions) -> dict:
    full = options.full
    return {
        "seed": (options.seeds or (0,))[0],
        # bucket: batches of similar length, cut to their longest sentence (200 steps in 88 s
        # against 146 s on one machine: benchmarks/transformer_training_choice.py)
        "distill": {"layers": [0, 3, 5], "steps": 3000 if full else 500, "bucket": True},
        # prune first: the teacher's layers lose heads and neurons, then the whole budget
        # (the distilled student's steps + the recovery's) trains the final architecture
        # prune first: all six of the teacher's layers lose a third of their heads and half
        # of their feed-forward neurons, then the whole budget trains the final architecture
        # with every layer's output matched to its own teacher layer (hints). Chosen on
        # validation at 600 steps over 6 heads and 512 neurons (benchmarks/
        # transformer_training_choice.py, candidates 9 and 10); at 200 steps the three-layer
        # students had chosen lr 3e-3, these two ran at 1e-3 (they start nearer the teacher)
        "prune": {"base": tasks.TEACHER_BASE, "layers": [0, 1, 2, 3, 4, 5],
                  "heads_sparsity": 4 / 12, "ffn_sparsity": 0.5, "criterion": "taylor",
                  "steps": 10000 if full else 2400, "bucket": True, "evaluations": 8,
                  "lr": 1e-3, "hint_weight": 1.0},
        "gptq": {"bits": [4, 3], "group_size": 128, "calibration_sentences": 128,
                 "eval_sentences": 2000},
        # the final stage: 4-bit GPTQ Linear rows on int8 kernels, 3-bit embeddings in groups
        # of 64 (8.2 MB for this architecture; int8 Linears with 4-bit embeddings: 12.6 MB)
        "measure": {"eval_sentences": 2000, "repeats": 30 if full else 10, "threads": 2,
                    "batches": [1, 32], "embedding_bits": 4, "group_size": 128,
                    "row_bits": 4, "row_embedding_bits": 3, "row_embedding_group_size": 64},
    }


def _training(p: dict) -> str:
    """How a stage's training differs from the tasks' defaults, in words."""
    lr = p.get("lr", tasks.TRAINING["lr"])
    words = f" at learning rate {lr:g}"
    if p.get("hint_weight"):
        words += f" with hidden-state hints (weight {p['hint_weight']:g})"
    if p.get("bucket"):
        words += " in batches of similar length"
    return words


def describe(options: ReproOptions, s: dict) -> str:
    d, p = s["distill"], s["prune"]
    full = settings(ReproOptions(options.out, full=True))
    removed = (f"{p['heads_sparsity']:.0%} of the heads and {p['ffn_sparsity']:.0%} of the "
               f"feed-forward neurons removed ({p['criterion']}"
               + (": first-order change of 1 - cosine to the teacher" if p["criterion"] ==
                  "taylor" else "") + ")")
    if p.get("base") == tasks.TEACHER_BASE:
        pipeline = (f"all-MiniLM-L6-v2 -> {len(p['layers'])} of its layers ({p['layers']}) "
                    f"with {removed}, then distilled {p['steps']} steps of 32 sentences"
                    f"{_training(p)} (the unpruned {len(d['layers'])}-layer student, distilled "
                    f"{d['steps']} steps{_training(d)}, is the reference row)")
        budget = f"{full['prune']['steps']} steps"
    else:
        pipeline = (f"all-MiniLM-L6-v2 -> {len(d['layers'])} of its layers ({d['layers']}) "
                    f"distilled {d['steps']} steps of 32 sentences; {removed}, recovered "
                    f"{p['steps']} steps")
        budget = f"{full['distill']['steps']} + {full['prune']['steps']} steps"
    return (f"reproduce transformer ({'full' if options.full else 'default'} run): "
            f"{pipeline}; int8 layers with {s['measure']['embedding_bits']}-bit embeddings, and "
            f"{s['measure']['row_bits']}-bit GPTQ rows on int8 kernels with "
            f"{s['measure']['row_embedding_bits']}-bit embeddings; GPTQ against "
            f"round-to-nearest at {' and '.join(map(str, s['gptq']['bits']))} bits. Corpus: the "
            "Python 3.11 documentation (Debian python3.11-doc), quality on 2,000 held-out "
            "sentences. "
            + ("" if options.full else "Scaled down to fit about an hour on the shared 2-core "
               "machine: distillation is far shorter than any published student's (--full: "
               f"{budget})."))


def distill_trial(s: dict) -> TrialSpec:
    return TrialSpec("transformer_distill", MODEL, DATA, params=s["distill"], seed=s["seed"])


def prune_trial(s: dict) -> TrialSpec:
    params = {"base": distill_trial(s).trial_id, **s["prune"]}  # unless s names its base
    return TrialSpec("transformer_prune", MODEL, DATA, params=params, seed=s["seed"])


def gptq_trial(s: dict) -> TrialSpec:
    return TrialSpec("transformer_gptq", MODEL, DATA, params=s["gptq"], seed=s["seed"])


def measure_trial(s: dict) -> TrialSpec:
    return TrialSpec("transformer_measure", MODEL, DATA,
                     params={"distill": distill_trial(s).trial_id,
                             "prune": prune_trial(s).trial_id, **s["measure"]},
                     seed=s["seed"])


def stages(s: dict, options: ReproOptions) -> list[list[TrialSpec]]:
    return [[distill_trial(s)], [prune_trial(s)], [gptq_trial(s)], [measure_trial(s)]]


def tables(run: Run) -> str:
    from netshrink.reproduce import transformer_tables

    return transformer_tables.write(run, distill_trial, prune_trial, gptq_trial,
                                    measure_trial, TARGETS, ANCHORS, write_csv)
