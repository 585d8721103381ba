#!/usr/bin/env bash
# Retrains the MiniGenImage demo models exactly as shipped (each card records its own command, seed and data hash).
# Two trainings run side by side with one torch thread each (this machine has 2 cores). Every command resumes from its
# own checkpoint if interrupted; run from the repository root.
set -euo pipefail
F=(dotnet run -c Release --project src/Forensics.Cli --)
"${F[@]}" minigenimage --photos models/demo/photos --out build/minigenimage --patches-only
DATA=build/minigenimage/real-patches/train
TEXT=tests/Forensics.ML.Tests/fixtures/reference-small   # the small CLIP text encoder + tokenizer the LDMs condition on
VAE=(--channels 16,32,32 --norm-groups 8 --batch 16 --steps 1200 --threads 1)
"${F[@]}" train-vae --data $DATA --output models/demo/vae-nearest --decoder nearest --name vae-nearest --seed 1 "${VAE[@]}" &
"${F[@]}" train-vae --data $DATA --output models/demo/vae-transpose --decoder transpose --name vae-transpose --seed 2 "${VAE[@]}" &
wait
LDM=(--text $TEXT --unet-channels 32,64 --batch 32 --steps 500 --sample-steps 20 --threads 1)
"${F[@]}" train-ldm --data $DATA --vae models/demo/vae-nearest --output models/demo/ldm_nearest --name ldm_nearest --seed 4 "${LDM[@]}" &
"${F[@]}" train-ldm --data $DATA --vae models/demo/vae-transpose --output models/demo/ldm_transpose --name ldm_transpose --seed 5 "${LDM[@]}" &
wait
"${F[@]}" train-gan --data $DATA --output models/demo/dcgan --name dcgan --ngf 32 --ndf 32 --batch 32 --steps 800 --seed 3 --threads 1
