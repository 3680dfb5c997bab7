#!/usr/bin/env bash
# LaDiffCodec's three phases as chained experiments (Yang et al., ICASSP 2024), each a
# call of ./run.sh (codec.sh) with its own --train_config and --tag:
#   phase 1  the discrete codec (any family; or --codec_exp: an existing experiment or a
#            converted EnCodec / DAC model file, which skips its training)
#   phase 2  the continuous autoencoder (codec: continuous_ae)
#   prepare  codectk.bin.ladiffcodec_prepare: phase-3 config with the frozen parts'
#            architectures, their weights and the latent statistics (init_from)
#   phase 3  the latent diffusion, decoded (stage 6, DDIM) and scored (stage 7)
#   then the plain codec decoded and scored at the same bitrate, and one table.
# A recipe's run_ladiffcodec.sh states its configs and calls this script.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1              # 1: data (run.sh stages 1-4), 2: codec, 3: AE, 4: prepare, 5: diffusion, 6: plain codec + table
stop_stage=6         # last step to run
codec_config=""      # phase 1 training YAML (discrete codec)
codec_exp=""         # use this discrete codec (exp folder, model file or .zip) instead of training phase 1
codec_args=""        # phase 1 --train_args
ae_config=""         # phase 2 training YAML (continuous_ae)
ae_args=""           # phase 2 --train_args
diff_config=""       # phase 3 training YAML (ladiffcodec)
prepare_args=""      # options of codectk.bin.ladiffcodec_prepare, e.g. "--max_utts 50"
diff_args=""         # phase 3 --train_args
inference_args=""    # phase 3 decoding options, e.g. "--sampling_steps 4"
test_set=""          # the set scored side by side (default: the recipe's first test set)
run_opts=""          # options for every ./run.sh call (e.g. "--fs 16000 --nj 8")

help_message="Usage: $0 --codec_config <yaml> --ae_config <yaml> --diff_config <yaml> [options]
Options [default]:
$(grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^ #]*) *# *(.*)$/  --\1 [\2] \3/')"

# shellcheck disable=SC1091
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "${help_message}"
    log "Error: stray positional arguments: $*"
    exit 2
fi
for opt in ae_config diff_config; do
    if [ ! -f "${!opt}" ]; then
        log "Error: --${opt} '${!opt}': no such file"
        exit 2
    fi
done
if [ -z "${codec_exp}" ] && [ ! -f "${codec_config}" ]; then
    log "Error: give --codec_config <yaml> (phase 1) or --codec_exp <exp or model file>"
    exit 2
fi
# shellcheck disable=SC1091
. ./path.sh
read -r -a opts <<< "${run_opts}"
# The recipe's set names and folders: run.sh states them, codec.sh --show_sets prints them.
recipe=$(./run.sh "${opts[@]}" --show_sets true) || { log "Error: ./run.sh --show_sets true failed"; exit 1; }
recipe_value() { sed -n "s/^$1=//p" <<< "${recipe}"; }
train_set=$(recipe_value train_set)
dumpdir=$(recipe_value dumpdir)
expdir=$(recipe_value expdir)
python=$(recipe_value python)
[ -n "${test_set}" ] || test_set=$(recipe_value test_sets | awk '{print $1}')
data_dump="${dumpdir}/raw"

codec_tag=$(basename "${codec_config:-${codec_exp}}" .yaml)
ae_tag=$(basename "${ae_config}" .yaml)
diff_tag=$(basename "${diff_config}" .yaml)
prep_dir="${expdir}/ladiffcodec_prep_${diff_tag}"
diff_exp="${expdir}/codec_${diff_tag}"
[ -z "${codec_exp}" ] && codec_exp="${expdir}/codec_${codec_tag}"
read -r -a prepare_args <<< "${prepare_args}"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Step 1: data: ./run.sh stages 1-4"
    ./run.sh "${opts[@]}" --stage 1 --stop_stage 4
fi
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ] && [ -n "${codec_config}" ] && [ "${codec_exp}" = "${expdir}/codec_${codec_tag}" ]; then
    log "Step 2: phase 1, discrete codec: ${codec_config} -> ${codec_exp}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${codec_config}" \
        --tag "${codec_tag}" --train_args "${codec_args}"
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Step 3: phase 2, continuous autoencoder: ${ae_config} -> ${expdir}/codec_${ae_tag}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${ae_config}" \
        --tag "${ae_tag}" --train_args "${ae_args}"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Step 4: prepare phase 3: ${diff_config} + ${codec_exp} + ${expdir}/codec_${ae_tag} -> ${prep_dir}"
    "${python}" -m codectk.bin.ladiffcodec_prepare --config "${diff_config}" --codec_exp "${codec_exp}" \
        --ae_exp "${expdir}/codec_${ae_tag}" --train_data "${data_dump}/${train_set}" --out_dir "${prep_dir}" \
        "${prepare_args[@]}"
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "Step 5: phase 3, latent diffusion: ${prep_dir}/config.yaml -> ${diff_exp} (train, decode, score)"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 8 --train_config "${prep_dir}/config.yaml" \
        --tag "${diff_tag}" --train_args "${diff_args}" --inference_model valid.diffusion.ave.pt \
        --inference_args "${inference_args}" --test_sets "${test_set}"
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    kbps=$(cat "${diff_exp}/decode_${test_set}/bitrate")
    plain_exp="${expdir}/codec_${diff_tag}_plain_codec"
    log "Step 6: the plain codec ${codec_exp} at ${kbps} kbps -> ${plain_exp}, then the table"
    # The discrete codec decoded as it is, at the diffusion model's bitrate, in its own
    # experiment folder (works for an exp folder and for a converted model file alike).
    mkdir -p "${plain_exp}"
    "${python}" -m codectk.bin.decode --model "${codec_exp}" --in_scp "${data_dump}/${test_set}/wav.scp" \
        --out_dir "${plain_exp}/decode_${test_set}" --wav_dir "${plain_exp}/decode_${test_set}/wav" \
        --target_bandwidth "${kbps}"
    "${python}" -m codectk.bin.score --ref_scp "${data_dump}/${test_set}/wav.scp" \
        --deg_scp "${plain_exp}/decode_${test_set}/wav.scp" \
        --codes_scp "${plain_exp}/decode_${test_set}/codes.scp" \
        --bitrate_kbps "${kbps}" --out_dir "${plain_exp}/scores/${test_set}"
    "${python}" -m codectk.bin.compare_scores "${diff_exp}/scores/${test_set}" \
        "${plain_exp}/scores/${test_set}" --names ladiffcodec "${codec_tag}" \
        | tee "${diff_exp}/scores/${test_set}_vs_plain_codec.txt"
fi
log "Successfully finished in ${SECONDS} s: ${diff_exp}/scores/${test_set}_vs_plain_codec.txt"
