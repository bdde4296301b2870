"""Every threshold a detector uses, in one place, each with the reason for its value."""

# -- run checks (probes/detectors/: one module per code) --------------------------------------------------

# weights-not-updating: a weight the optimizer holds, with a gradient, that did not move at all.
NOT_UPDATING_MIN_STEPS = 3          # one zero update can be a skipped step (AMP's GradScaler skips on inf);
                                    # three recorded steps in a row cannot
NOT_UPDATING_MIN_GRAD = 1e-12       # a gradient this small may legitimately round to no change in float32
# ... and so may one that is this small beside the model's typical gradient at that step: the bias of a layer
# followed by BatchNorm gets a gradient that is zero but for rounding (~1e-9 where the rest see ~1e-1), and
# SGD's lr x 1e-9 is below float32's resolution of the bias. A real bug (lr 0, weights restored) leaves
# weights with ordinary gradients unchanged.
NOT_UPDATING_REL_GRAD = 1e-6
# weights that moved at first and then stopped (a schedule that reaches lr 0 and stays there, weights
# restored from a copy each step): the unmoving steps at the end of the run must be at least this share of
# its recorded steps (and NOT_UPDATING_MIN_STEPS): a schedule that touches 0 on its last step is not a bug
NOT_UPDATING_TAIL_FRACTION = 0.2

# vanishing-gradients / exploding-gradients across depth. Single tensors are small by design in healthy
# models (attention query/key projections, a layer scale initialised at 1e-6, LoRA's A while B is zero), so
# the unit is a block: the parameters under one numbered child (encoder.layer.3, features.2), or a leaf
# module where there is no numbering, measured as the RMS gradient per element of its weight matrices
# (median over recorded steps; width does not change it). Embedding tables are left out: only the rows a
# batch used get a gradient, so their per-element RMS is diluted by design.
DEPTH_MIN_BLOCKS = 3                # a trend needs at least three points along depth
DEPTH_TREND_RANK = 0.8              # Spearman correlation of depth and log gradient: a steady trend, not noise
VANISHING_DEPTH_SPAN = 1e2          # fitted fall across the blocks, input to output: a sigmoid/tanh stack
                                    # loses ~4-8x per layer (100x over 3-4 layers); healthy nets stay flat
                                    # within ~10x
VANISHING_BLOCK_RATIO = 0.1         # the blocks named are those a tenth or less of the output block's
EXPLODING_DEPTH_SPAN = 1e4          # the fitted rise towards the input that counts as exploding
# A block whose weights move at a normal rate is learning, whatever its raw gradient: Adam and other
# adaptive optimizers divide the gradient by its own scale. Vanishing is confirmed only when the named blocks'
# update ratio ||dW||/||W|| is also below this fraction of the output block's (with SGD small gradients give
# small updates, so this agrees with the gradients; with Adam it usually vetoes).
VANISHING_UPDATE_CONFIRM = 0.1
# across steps: the total gradient norm (all parameters) growing this much from the first recorded steps
# to the last. A clean run's gradient norm rises at most ~10x early on (Adam warm-up, a loss spike).
EXPLODING_STEP_GROWTH = 1e3
GRAD_MIN_STEPS = 3                  # recorded steps needed before gradient dynamics say anything

# update-ratio: ||dW|| / ||W|| per weight matrix, median over recorded steps. The usual value is ~1e-3
# (Karpathy, "A Recipe for Training Neural Networks"). Adam's first steps move every element by ~lr, so a
# wide layer at lr=1e-3 legitimately reads ~0.05-0.1: "too high" starts well above that.
UPDATE_RATIO_HIGH = 0.3             # each step rewrites a third of the weight: the lr is far too high
UPDATE_RATIO_LOW = 1e-6             # a thousand times below the usual: the weights barely move
UPDATE_RATIO_MIN_FRACTION = 0.5     # "many layers": at least half of the weight matrices with data
UPDATE_RATIO_MIN_STEPS = 2          # recorded steps per parameter before its median counts
UPDATE_RATIO_EARLY_STEPS = 3        # "too high" is also judged on the median of the first recorded steps
# optimizers that choose their own step length (quasi-Newton with a line search or curvature estimate):
# their update size says nothing about a learning rate, so update-ratio does not judge their parameters
UPDATE_RATIO_SELF_SCALING = frozenset({"LBFGS"})

# memory-growth: a robust (Theil-Sen) slope of memory over the last steps. RSS on CPU is coarse (allocator
# arenas, page granularity, one-off caches), so it needs a clear slope, a large total and growth in both
# halves of the window (a one-time jump, e.g. optimizer state allocated, is not a leak).
MEMORY_SKIP_STEPS = 1               # step 0 allocates optimizer state, autograd buffers, caches
MEMORY_MIN_STEPS = 4                # points in the window, after the skipped steps
MEMORY_WINDOW = 200                 # fit over the last N steps: a leak is a steady state, not the start
MEMORY_RSS_SLOPE = 1 << 20          # bytes/step (1 MiB): below this RSS noise dominates short runs
MEMORY_RSS_FLOOR = 32 << 20         # total fitted growth over the window (32 MiB) before we call it a leak
MEMORY_CUDA_SLOPE = 256 << 10       # bytes/step: CUDA's allocated counter is exact, so a smaller slope is real
MEMORY_CUDA_FLOOR = 16 << 20        # total fitted growth over the window (16 MiB)

# memory-growth from autograd (watchers/memory_growth.py): the graphs of this many earlier steps still alive
# (the step just before is not counted: a loop may keep its last loss) is a loop keeping its tensors
KEPT_GRAPH_STEPS = 3
KEPT_GRAPH_WATCH_STEPS = 8          # marked on the first steps (and on diagnostic steps after)

# dataloader-stall: share of the step spent waiting for the next batch, from the median wait and the median
# compute time (step time less the wait) over the steps after worker start-up. Medians ignore the slow steps a
# busy machine adds; the share is judged well below the real stalls seen (0.5-0.65 of a step, where a
# threshold at 0.5 flipped the verdict from run to run with machine load): at 0.3 the model idles almost a
# third of every step, and background workers would make training ~1.4x faster or more.
DATA_WAIT_SHARE = 0.3
DATA_COMPUTE_QUANTILE = 0.25        # compute per step: its lower quartile (load adds time, never removes it)
DATA_WAIT_MIN_S = 0.002             # median wait per step; microsecond waits on a toy step are not worth fixing
DATA_WAIT_MIN_STEPS = 3             # steps after the first (worker start-up is not a stall)
DATA_WAIT_MAX_WORKERS = 8           # suggested num_workers is capped here: beyond ~8 returns diminish

# suspicious-initial-loss: cross-entropy at initialisation should be ~log(classes) (uniform predictions).
INITIAL_LOSS_RATIO = 1.5            # 1.5x above (overconfident init) or below log(C) (labels leaking, or a
                                    # loss that is not a mean over classes); default inits land within ~1.15x


# ---------------------------------------------------------------------------------------------------
# watchers (probes/watchers/): runtime detectors. Maintained apart from the run-check thresholds above.
# ---------------------------------------------------------------------------------------------------

# dead-units: a unit after a ReLU/ReLU6 is "dead" when it outputs exactly zero for nearly every input.
# 0.99, not 1.0: one stray positive input in a hundred does not bring a unit back to life (its gradient
# is still ~0), while a healthy ReLU unit is zero for roughly half its inputs.
DEAD_UNIT_ZERO_FRAC = 0.99
# Warn when at least half of a layer's units are dead: a few dead units are normal in a wide ReLU net;
# half the layer gone is lost capacity that will not come back (a dead unit gets no gradient).
DEAD_LAYER_SHARE = 0.5
# Judge only after this many diagnostic steps (the Probe's default diagnoses steps 0-2): one batch can
# be unlucky; two batches all-zero on the same units is a pattern.
DEAD_MIN_STEPS = 2
# Layers with fewer units than this are skipped: with 2 units, one unlucky unit is already "50%".
DEAD_MIN_UNITS = 4                  # ... unless every unit of the layer is dead


# ---------------------------------------------------------------------------------------------------
# --compile-check (probes/compile_check.py): torch._dynamo.explain's graph breaks, reported as info.
# ---------------------------------------------------------------------------------------------------

# Distinct (file, line, reason) break locations reported: a model that breaks in more places than this
# needs its first breaks fixed before the rest are worth reading (each finding counts all locations).
COMPILE_MAX_BREAK_FINDINGS = 10
# Reasons and explanations are cut to this many characters: dynamo's messages run to paragraphs.
COMPILE_REASON_CHARS = 200
# explain runs inside the check's --timeout: it gets the time left minus this margin (writing the result,
# the worker's exit), and is skipped, with an info finding, when less than COMPILE_MIN_TIME_S would remain.
COMPILE_TIME_MARGIN_S = 5.0
COMPILE_MIN_TIME_S = 2.0            # explain on a small model takes ~0.5 s on CPU after dynamo is imported


# ---------------------------------------------------------------------------------------------------
# ranks-out-of-sync (detectors/ranks_out_of_sync.py): per-parameter weight norms compared across ranks.
# ---------------------------------------------------------------------------------------------------

# Replicas agree bit for bit after every step (the gradient all-reduce gives every rank the same average),
# so any difference is a bug; the tolerance only absorbs a norm summed in another order on another CPU
# (float32 accumulation: ~1e-7 relative). A re-initialised or reloaded layer differs by tens of percent.
RANK_SYNC_RTOL = 1e-5
