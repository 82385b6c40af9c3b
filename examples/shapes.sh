#!/usr/bin/env bash
# The demo as a shell pipeline: what `innx demo` does, one innx command per stage. Each command
# prints the path it wrote on stdout, and that path is the next stage's input.
#
#   bash examples/shapes.sh [OUT]            # the full demo's sizes (minutes on a laptop CPU)
#   QUICK=1 bash examples/shapes.sh [OUT]    # tiny sizes: checks the pipeline in about a minute
#
# A stage whose output is already there is skipped (figures and the report too), so an
# interrupted run continues and a finished one reruns in seconds.
set -euo pipefail

out=${1:-shapes-pipeline}
if [[ "${QUICK:-0}" == 1 ]]; then
    data=shapes:n=1200,size=32,seed=0 layers=(input conv2 logits)
    clf_steps=60 ae_length=(--epochs 4) latent=16 inv_steps=(60 60 60) sem_steps=80 dims=(--dims 4,4,4) batch=128
    judge=(--judge-steps 100)
else
    data=shapes:n=20000,size=32,seed=0 layers=(input conv2 pool logits)
    clf_steps=200 latent=32 inv_steps=(500 200 2000 2000) sem_steps=6000
    dims=(--dims 3,3,3) batch=256 judge=() ae_length=()
fi
source "$(dirname "${BASH_SOURCE[0]}")/stages.sh"   # stage, render, report
mkdir -p "$out"
cd "$out"


# 1. a few images as files, to render from paths as well as from store rows
[[ -d images ]] || innx data shapes images --n 8 --size 32 --seed 1 >/dev/null

# 2. the network to explain: smallcnn, trained to classify shape
clf=$(stage clf innx fit classifier "$data" --steps $clf_steps)

# 3. the autoencoder: E gives the complete code zbar, D decodes it (its manifest records how often
#    the classifier predicts on a held-out reconstruction what it predicts on the image)
ae=$(stage ae innx fit autoencoder "$data" --latent-dim $latent "${ae_length[@]}" \
    --classifier "$clf")

# 4. the layers' activations, zbar and thumbnails in one HDF5 store
store=$(stage acts.h5 innx extract "$data" --weights "$clf" --autoencoder "$ae" --store-images \
    "${layers[@]/#/--layer=}")

# 5. t for each layer: what the layer is invariant to
invs=()
for i in "${!layers[@]}"; do
    layer=${layers[$i]}
    run=$(stage "inv-$layer" innx fit invariance "$store" --layer "$layer" --steps "${inv_steps[$i]}" \
        --batch-size $batch)
    invs+=("--invariance=$run")
done
deepest=${invs[-1]#--invariance=}

# 6. e on three named factors, from pairs of images that share one
sem=$(stage sem innx fit semantic "$store" --factor shape --factor fg_color --factor bg_color \
    "${dims[@]}" --steps $sem_steps --batch-size $batch --no-swaps)

# 7. pictures
mkdir -p figures
render samples "$store" --invariance "$deepest" --rows 0,1,2,3,4 -n 6 -o figures/samples.png
files=(images/*/*.png) from_files=()
for file in "${files[@]:0:4}"; do from_files+=(--image "$file"); done
render samples "$store" --invariance "$deepest" "${from_files[@]}" -n 6 -o figures/samples-files.png
render layers "$store" "${invs[@]}" --rows 0 -n 6 -o figures/layers.png
render mix "$store" --invariance "$deepest" --rows 0,1,2,3,4 -o figures/mix.png
render animate "$store" --invariance "$deepest" --rows 0,1,2 --frames 32 -o figures/animate.gif
for factor in shape fg_color bg_color; do
    render swap "$store" --semantic "$sem" --factor $factor --rows 0,1,2,3,4 \
        -o "figures/swap-$factor.png"
done
render interpolate "$store" --semantic "$sem" --factor fg_color --rows 0,1 \
    -o figures/interpolate-fg_color.png
render interpolate "$store" --semantic "$sem" --factor shape --rows 0 --sigmas 2 \
    -o figures/traverse-shape.png

# 8. measurements: what each layer keeps and ignores, with the verdict of the fits behind them
#    (a finished report is kept: delete report/ to measure again)
report "$store" "${invs[@]}" --semantic "$sem" "${judge[@]}"
