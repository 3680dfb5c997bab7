#!/usr/bin/env bash
# LaDiffCodec's three phases as chained experiments (Yang et al., ICASSP 2024), each a
# call of ./run.sh (codec.sh) tagged with its config's file name. Sequencing only: the
# phase-3 YAML names its predecessors (phase_inputs: discrete_codec, autoencoder as
# ${exp:<config name>}, codectk/phase.py).
#   phase 1  the discrete codec (any family; or --codec_exp: an existing experiment or a
#            converted EnCodec / DAC model file, which skips its training)
#   phase 2  the continuous autoencoder (codec: continuous_ae)
#   prepare  codectk.bin.ladiffcodec_prepare: phase-3 config with the frozen parts'
#            architectures, their weights and the latent statistics (init_from)
#   phase 3  the latent diffusion, decoded (stage 6, DDIM) and scored (stage 7)
#   then the plain discrete codec decoded and scored at the same bitrate (./run.sh
#   --codec_exp, stages 6-7), and one table.
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
codec_exp=""         # use this discrete codec (exp folder, model file or .zip) instead of the one diff_config names
codec_args=""        # phase 1 --train_args
ae_config=""         # phase 2 training YAML (continuous_ae)
ae_args=""           # phase 2 --train_args
diff_config=""       # phase 3 training YAML (ladiffcodec, naming phases 1 and 2)
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
# shellcheck disable=SC1091
. ./cmd.sh
: "${train_cmd:?cmd.sh must set train_cmd}"
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

# The chain, checked before any work (configs, overrides, each phase naming earlier ones).
phases=()
_diff_check=${diff_args}
if [ -n "${codec_exp}" ]; then
    _diff_check="--phase_inputs.discrete_codec ${codec_exp} ${diff_args}"
else
    phases+=(--phase "${codec_config}" --phase_args="${codec_args}")
fi
phases+=(--phase "${ae_config}" --phase_args="${ae_args}")
phases+=(--phase "${diff_config}" --phase_args="${_diff_check}")
if ! "${python}" -m codectk.bin.check_recipe --expdir "${expdir}" "${phases[@]}"; then
    log "Error: bad phase configs (the line above says which); nothing was run"
    exit 2
fi
ae_tag=$(basename "${ae_config}" .yaml)
diff_tag=$(basename "${diff_config}" .yaml)
prep_dir="${expdir}/ladiffcodec_prep_${diff_tag}"
diff_exp="${expdir}/codec_${diff_tag}"
_codec_opt=()
[ -n "${codec_exp}" ] && _codec_opt=(--codec_exp "${codec_exp}")

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Step 1: data: ./run.sh stages 1-4"
    ./run.sh "${opts[@]}" --stage 1 --stop_stage 4
fi
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ] && [ -z "${codec_exp}" ]; then
    codec_tag=$(basename "${codec_config}" .yaml)
    log "Step 2: phase 1, discrete codec: ${codec_config} -> ${expdir}/codec_${codec_tag}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${codec_config}" \
        --tag "${codec_tag}" --train_args "${codec_args}"
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Step 3: phase 2, continuous autoencoder: ${ae_config} -> ${expdir}/codec_${ae_tag}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${ae_config}" \
        --tag "${ae_tag}" --train_args "${ae_args}"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Step 4: prepare phase 3: ${diff_config} and the phases it names ${_codec_opt[*]} -> ${prep_dir}"
    # shellcheck disable=SC2086
    ${train_cmd} "${prep_dir}/prepare.log" "${python}" -m codectk.bin.ladiffcodec_prepare \
        --config "${diff_config}" --expdir "${expdir}" "${_codec_opt[@]}" \
        --train_data "${data_dump}/${train_set}" --out_dir "${prep_dir}" ${prepare_args} \
        || { log "Error: step 4 (prepare) failed; the error is above"; exit 1; }
    grep -h 'wrote .*config.yaml' "${prep_dir}/prepare.log" | tail -n 1
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "Step 5: phase 3, latent diffusion: ${prep_dir}/config.yaml -> ${diff_exp} (train, decode, score)"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 8 --train_config "${prep_dir}/config.yaml" \
        --tag "${diff_tag}" --train_args "${diff_args}" --inference_model valid.diffusion.ave.pt \
        --inference_args "${inference_args}" --test_sets "${test_set}"
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    kbps=$(cat "${diff_exp}/decode_${test_set}/bitrate")
    plain=$(sed -n 's/^discrete_codec //p' "${prep_dir}/phase_inputs")  # what step 4 read
    plain_tag="${diff_tag}_plain_codec"  # names the outputs of a model file (codec.sh --tag)
    plain_out=${plain} && name=$(basename "${plain}") && name=${name#codec_}
    if [ -f "${plain}" ]; then plain_out="${expdir}/codec_${plain_tag}" && name=${name%.*}; fi
    log "Step 6: the plain codec ${plain} at ${kbps} kbps -> ${plain_out}, then the table"
    ./run.sh "${opts[@]}" --stage 6 --stop_stage 7 --codec_exp "${plain}" --tag "${plain_tag}" \
        --decode_bandwidths "${kbps}" --test_sets "${test_set}"
    "${python}" -m codectk.bin.compare_scores "${diff_exp}/scores/${test_set}" \
        "${plain_out}/scores/${test_set}_${kbps}kbps" --names ladiffcodec "${name}" \
        | tee "${diff_exp}/scores/${test_set}_vs_plain_codec.txt"
fi
log "Successfully finished in ${SECONDS} s: ${diff_exp}/scores/${test_set}_vs_plain_codec.txt"
