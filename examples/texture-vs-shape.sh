#!/usr/bin/env bash
# The paper's texture-bias study, with ground truth: on `cues` (a shape filled with a texture), a
# shape model and a texture model are trained from the same images; one autoencoder and one e (on
# shape, texture and colour) serve both; t at three depths of each model shows which layers keep
# which cue; the two reports are compared, concepts are swapped through e to see which one each
# model acts on, and the shape model is attacked (FGSM and PGD, with a noise control).
#
#   bash examples/texture-vs-shape.sh [OUT]            # default sizes (under 15 min on 2 cores)
#   QUICK=1 bash examples/texture-vs-shape.sh [OUT]    # tiny sizes: checks it all in about a minute
#
# A stage whose output is already there is skipped, so an interrupted run continues.
set -euo pipefail

out=${1:-texture-vs-shape}
layers=(input conv2 logits)
if [[ "${QUICK:-0}" == 1 ]]; then
    data=cues:n=600,size=32,seed=0 clf_steps=30 ae_length=(--steps 40)
    inv_steps=(15 15 30) sem_steps=30 batch=64 analyze=(--samples 32 --draws 2 --decode-draws 1
    --judge-steps 30 --bootstrap 10) attack=(--rows 0-7 -n 2 --judge-steps 30)
else
    data=cues:n=12000,size=32,seed=0 clf_steps=300 ae_length=(--epochs 12)
    inv_steps=(500 400 1500) sem_steps=4000 batch=256 analyze=(--samples 256 --judge-steps 800)
    attack=(--rows 0-63 -n 8 --judge-steps 800)
fi
eps=${EPS:-0.08}
source "$(dirname "${BASH_SOURCE[0]}")/stages.sh"   # stage
mkdir -p "$out"
cd "$out"

# 1. two models of the same images: one learns the shape, the other the texture
for cue in shape texture; do
    stage "$cue-model" innx fit classifier "$data" --label "$cue" --steps $clf_steps >/dev/null
done

# 2. one autoencoder for both (its reconstructions keep the texture model's prediction, the
#    harder of the two); 16-d codes hold these images about as well as 64-d ones (29.8 against
#    30.3 dB held out), and t's samples of the shape model's logits keep its prediction more often
#    (78 against 73 %)
ae=$(stage ae innx fit autoencoder "$data" --latent-dim 16 "${ae_length[@]}" \
    --classifier texture-model)

# 3. each model's layers, with the same latents and thumbnails
for cue in shape texture; do
    stage "$cue.h5" innx extract "$data" --weights "$cue-model" --autoencoder "$ae" \
        --store-images "${layers[@]/#/--layer=}" >/dev/null
done

# 4. t at three depths of each model
declare -A invs
for cue in shape texture; do
    invs[$cue]=""
    for i in "${!layers[@]}"; do
        layer=${layers[$i]}
        run=$(stage "inv-$cue-$layer" innx fit invariance "$cue.h5" --layer "$layer" \
            --steps "${inv_steps[$i]}" --batch-size $batch)
        invs[$cue]+=" --invariance=$layer=$run"
    done
done

# 5. one e on shape, texture and colour (it reads the latents only, so it serves both stores)
sem=$(stage sem innx fit semantic shape.h5 --factor shape --factor texture --factor fg_color \
    --dims 3,3,3 --steps $sem_steps --batch-size $batch --no-swaps)

# 6. what each model's layers keep, and what swapping a concept does to its prediction
for cue in shape texture; do
    [[ -f "report-$cue/report.json" ]] || innx analyze "$cue.h5" ${invs[$cue]} --semantic "$sem" \
        "${analyze[@]}" -o "report-$cue" --overwrite >/dev/null
done

# 7. the two models side by side
[[ -f comparison/compare.json ]] || innx compare shape=report-shape texture=report-texture \
    -o comparison --overwrite >/dev/null

# 8. the shape model attacked: what its layers see in the attacked image (EPS=… to change). One
#    FGSM step flips at most 51 of its 64 rows at any eps; PGD's 10 steps in the same L∞ ball
#    flip nearly all
for method in fgsm pgd; do
    [[ -f attack-$method/attack.json ]] || innx attack shape.h5 ${invs[shape]} --method $method \
        --eps "$eps" "${attack[@]}" -o "attack-$method" --overwrite >/dev/null
done

echo "$out"
