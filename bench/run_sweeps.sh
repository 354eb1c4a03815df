#!/bin/sh
# The bit-width / LR-count sweeps committed under bench/results/ (issue: main job).
# Each folder is filled by several `pulptrain sweep --resume` calls, so the
# grid can be stopped and continued. One thread per sweep: run the three in
# parallel on a multi-core machine (about an hour each on one core).
#
#   sh bench/run_sweeps.sh standin object
#   sh bench/run_sweeps.sh standin category
#   sh bench/run_sweeps.sh fashion
#   sh bench/run_sweeps.sh standin-fp32-frozen   (FP32 frozen stage: the LRs' own quantization)
set -eu
what=${1:?standin or fashion}
level=${2:-object}
case $what in
  standin)
    out=bench/results/sweep_standin_$level
    common="--scenario core50-standin/nicv2_79 --level $level --batches 20 --epochs 1 --eval-every 5"
    ;;
  standin-fp32-frozen)
    # With the INT8 frozen stage the latents are already 8-bit codes of
    # [0, 6], so 8-bit LRs store them exactly; an FP32 frozen stage makes
    # every LR precision, 8 bit included, a real quantization.
    out=bench/results/sweep_standin_fp32_frozen
    common="--scenario core50-standin/nicv2_79 --level object --frozen fp32 --batches 20 --epochs 1 --eval-every 5"
    sweep="python -m pulptrain --threads 1 sweep $common --quiet --resume --out $out"
    $sweep --bits fp32,8,7,4,2 --seeds 0,1,2
    $sweep --bits 6,5,3,1 --seeds 0
    exit 0
    ;;
  fashion)
    out=bench/results/sweep_fashion_mnist
    # class-incremental (5 tasks of 2 classes) on every 10th training image
    # (1,200 per task) and every 5th test image (2,000), the whole stream
    common="--scenario fashion-mnist/class_incremental --scenario-option train_step=10 --scenario-option test_step=5 --full --epochs 1"
    ;;
  *) echo "usage: $0 standin [object|category] | standin-fp32-frozen | fashion" >&2; exit 2 ;;
esac
sweep="python -m pulptrain --threads 1 sweep $common --quiet --resume --out $out"
# FP32 and the bit widths the issue asks three seeds for, with both bounds
$sweep --bits fp32,8,7,4,2 --seeds 0,1,2 --bounds
# every other bit width, one seed
$sweep --bits 6,5,3,1 --seeds 0
# the LR count at FP32 and 8 bit
$sweep --bits fp32,8 --lr-counts 750,3000 --seeds 0
