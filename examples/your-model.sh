#!/usr/bin/env bash
# Your own model on your own images: a folder of images with attributes.csv, a timm model trained
# on it, and the method on that model's layers. Here the folder is generated (the shapes dataset at
# 64 px); point DATA at yours (class subfolders, or flat with a label column in attributes.csv).
#
#   bash examples/your-model.sh [OUT]                    # a few minutes on a GPU, longer on a CPU
#   QUICK=1 bash examples/your-model.sh [OUT]            # tiny sizes: checks it in ~2 minutes
#   MODEL=timm:vit_tiny_patch16_224 LAYERS="blocks.3 blocks.11 logits" bash examples/your-model.sh
#
# Every command runs on the GPU when there is one (--device auto, the default). A stage whose
# output is already there is skipped, so an interrupted run continues.
set -euo pipefail

out=${1:-your-model}
model=${MODEL:-timm:convnext_atto}      # any 'innx backbones' name: timm:<name>, or your plugin's
if [[ "${QUICK:-0}" == 1 ]]; then
    n=256 clf=(--steps 30) ae=(--steps 60) inv_steps=40 sem_steps=60 batch=64 default_layers="stages.1 logits"
    measure=(--judge-steps 60 --bootstrap 20 --draws 4)
else
    n=6000 clf=(--epochs 3) ae=(--epochs 8) inv_steps=1500 sem_steps=3000 batch=128 measure=()
    default_layers="stages.1 stages.3 logits"
fi
read -r -a layers <<< "${LAYERS:-$default_layers}"   # 'innx layers $MODEL' lists them
source "$(dirname "${BASH_SOURCE[0]}")/stages.sh"   # stage, render, report
mkdir -p "$out"
cd "$out"


# 1. the data: a folder of same-size images and attributes.csv (one row per image, one column per
#    attribute; a column of words or of few whole numbers is categorical, else continuous; state it
#    with --factor name:categorical where the rule guesses wrong). 'innx data info' shows it.
[[ -d images ]] || innx data shapes images --n $n --size 64 --seed 0 >/dev/null
data=folder:images
innx data info "$data" >&2

# 2. the model to explain, trained on the folder's classes (bring trained weights instead with
#    --weights FILE on extract). --option passes keyword arguments to timm.create_model; img_size
#    sizes a CNN's preprocessing (a vision transformer is built at that size).
clf=$(stage clf innx fit classifier "$data" --backbone "$model" --option img_size=64 "${clf[@]}")

# 3. the autoencoder at the folder's own size (64 px, read from the files: no --size)
ae=$(stage ae innx fit autoencoder "$data" --latent-dim 32 "${ae[@]}" --classifier "$clf")

# 4. the layers, zbar and 64 px thumbnails in one store; the model sees its own preprocessing
store=$(stage acts.h5 innx extract "$data" --weights "$clf" --autoencoder "$ae" --store-images \
    "${layers[@]/#/--layer=}")

# 5. t per layer: what the layer is invariant to
invs=()
for layer in "${layers[@]}"; do
    run=$(stage "inv-$layer" innx fit invariance "$store" --layer "$layer" --steps $inv_steps \
        --batch-size $batch)
    invs+=("--invariance=$run")
done
deepest=${invs[-1]#--invariance=}

# 6. e on named attributes of the folder
sem=$(stage sem innx fit semantic "$store" --factor shape --factor fg_color --factor bg_color \
    --steps $sem_steps --batch-size $batch --no-swaps)

# 7. pictures and measurements
#    (kept when there: delete a figure or report/ to draw or measure again)
mkdir -p figures
render samples "$store" --invariance "$deepest" --rows 0-4 -n 6 -o figures/samples.png
render layers "$store" "${invs[@]}" --rows 0 -n 6 -o figures/layers.png
report "$store" "${invs[@]}" --semantic "$sem" "${measure[@]}"
