#!/usr/bin/env bash
# AudioDec (Wu et al., ICASSP 2023) as chained experiments, each a call of ./run.sh
# (codec.sh) tagged with its config's file name. Sequencing only: each later phase's
# YAML names its predecessor (init_from: ${exp:<symAD config name>}, codectk/phase.py).
#   step 1  data: ./run.sh stages 1-4
#   step 2  symAD: metric losses, then (from discriminator_start_step) the decoder with
#           the discriminators and encoder/projector/quantizer frozen -> exp/codec_<symad>
#           (decoded and scored too with --symad_eval true)
#   step 3  code statistics of the symAD codes on the training set (codectk.bin.code_stats)
#           -> exp/codec_<symad>/code_stats.npy, which the vocoder config reads
#   step 4  AD vocoder (its config: init_from and codec_conf.stats from the symAD
#           experiment, the analyser frozen): trained, decoded (stage 6), scored (stage 7)
#   step 5  streaming: `codectk stream` over the test set with the vocoder model, one
#           job array (${decode_cmd} JOB=1:N) -> exp/codec_<vocoder>/stream_<test_set>/
#   step 6  (--denoise true) denoising: noisy/clean pairs at --snrs (codectk.bin.make_noisy,
#           noise from --noise_scp or, without one, other utterances of the same set),
#           then --denoise_config (the symAD's encoder + projector trained on them with
#           quantizer and decoder frozen, AudioDec's trainer/denoise.py) -> exp/codec_<denoise>
# A recipe's run_audiodec.sh states its configs and calls this script.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1              # 1: data, 2: symAD, 3: code stats, 4: vocoder, 5: streaming, 6: denoising
stop_stage=6         # last step to run
symad_config=""      # step 2 training YAML (codec: symad)
symad_args=""        # step 2 --train_args
symad_eval=true      # decode and score the symAD experiment too (stages 6-7)
stats_opts=""        # step 3 options of codectk.bin.code_stats, e.g. "--max_utts 500"
vocoder_config=""    # step 4 training YAML (codec: audiodec, after the symAD experiment)
vocoder_args=""      # step 4 --train_args
test_set=""          # the set decoded, scored and streamed (default: the recipe's first test set)
chunk_ms=12.5        # step 5 streaming chunk (ms)
stream_nj=4          # step 5 parallel jobs
denoise=false        # run step 6
denoise_config=""    # step 6 training YAML (codec: symad, after the symAD experiment)
noise_scp=""         # step 6 noise recordings (wav.scp); empty: other utterances of the set
snrs="0 5 10 15"     # step 6 SNRs (dB)
denoise_args=""      # step 6 --train_args
run_opts=""          # options for every ./run.sh call (e.g. "--nj 8")

help_message="Usage: $0 --symad_config <yaml> --vocoder_config <yaml> [--denoise_config <yaml>] [options]
Options [default]:
$(grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^ #]*) *# *(.*)$/  --\1 [\2] \3/')"

# shellcheck disable=SC1091
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "${help_message}"
    log "Error: stray positional arguments: $*"
    exit 2
fi
_configs="symad_config vocoder_config"
[ "${denoise}" = true ] && _configs+=" denoise_config"
for opt in ${_configs}; do
    if [ ! -f "${!opt}" ]; then
        log "${help_message}"
        log "Error: --${opt} '${!opt}': no such file"
        exit 2
    fi
done
# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./cmd.sh
: "${train_cmd:?cmd.sh must set train_cmd}" "${decode_cmd:?cmd.sh must set decode_cmd}"
read -r -a opts <<< "${run_opts}"
# The recipe's set names and folders: run.sh states them, codec.sh --show_sets prints them.
recipe=$(./run.sh "${opts[@]}" --show_sets true) || { log "Error: ./run.sh --show_sets true failed"; exit 1; }
recipe_value() { sed -n "s/^$1=//p" <<< "${recipe}"; }
train_set=$(recipe_value train_set)
valid_set=$(recipe_value valid_set)
dumpdir=$(recipe_value dumpdir)
expdir=$(recipe_value expdir)
python=$(recipe_value python)
[ -n "${test_set}" ] || test_set=$(recipe_value test_sets | awk '{print $1}')
data_dump="${dumpdir}/raw"

# The chain, checked before any work: configs and their overrides, each phase naming
# an earlier one (or a finished experiment).
phases=(--phase "${symad_config}" --phase_args="${symad_args}")
phases+=(--phase "${vocoder_config}" --phase_args="${vocoder_args}")
[ "${denoise}" = true ] && phases+=(--phase "${denoise_config}" --phase_args="${denoise_args}")
if ! "${python}" -m codectk.bin.check_recipe --expdir "${expdir}" "${phases[@]}"; then
    log "${help_message}"
    log "Error: bad phase configs (the line above says which); nothing was run"
    exit 2
fi
symad_tag=$(basename "${symad_config}" .yaml)
vocoder_tag=$(basename "${vocoder_config}" .yaml)
symad_exp="${expdir}/codec_${symad_tag}"
vocoder_exp="${expdir}/codec_${vocoder_tag}"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Step 1: data: ./run.sh stages 1-4"
    ./run.sh "${opts[@]}" --stage 1 --stop_stage 4
fi
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    _stop=5
    [ "${symad_eval}" = true ] && _stop=7
    log "Step 2: symAD (two phases): ${symad_config} -> ${symad_exp}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage "${_stop}" --train_config "${symad_config}" \
        --tag "${symad_tag}" --train_args "${symad_args}" --test_sets "${test_set}"
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Step 3: code statistics: ${symad_exp} on ${data_dump}/${train_set} -> ${symad_exp}/code_stats.npy"
    # shellcheck disable=SC2086
    ${decode_cmd} "${symad_exp}/code_stats.log" "${python}" -m codectk.bin.code_stats --model "${symad_exp}" \
        --data "${data_dump}/${train_set}" --out "${symad_exp}/code_stats.npy" ${stats_opts} \
        || { log "Error: step 3 failed; the error is above"; exit 1; }
    grep -h 'code_stats:' "${symad_exp}/code_stats.log" | tail -n 1
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Step 4: AD vocoder on ${symad_exp}'s codes: ${vocoder_config} -> ${vocoder_exp} (train, decode, score)"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 7 --train_config "${vocoder_config}" \
        --tag "${vocoder_tag}" --train_args "${vocoder_args}" --test_sets "${test_set}"
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    out="${vocoder_exp}/stream_${test_set}"
    scp="${data_dump}/${test_set}/wav.scp"
    _nj=$(wc -l < "${scp}")
    [ "${stream_nj}" -le "${_nj}" ] && _nj=${stream_nj}
    log "Step 5: streaming (${chunk_ms} ms chunks, ${_nj} jobs): ${scp} with ${vocoder_exp} -> ${out}"
    rm -rf "${out}" && mkdir -p "${out}/logdir"
    _parts=()
    for i in $(seq "${_nj}"); do _parts+=("${out}/logdir/wav.${i}.scp"); done
    utils/split_scp.pl "${scp}" "${_parts[@]}"
    # shellcheck disable=SC2086
    ${decode_cmd} JOB=1:"${_nj}" "${out}/logdir/stream.JOB.log" "${python}" -m codectk.bin.stream \
        --in_scp "${out}/logdir/wav.JOB.scp" --out_dir "${out}/wav" --model "${vocoder_exp}" \
        --chunk_ms "${chunk_ms}" || { log "Error: step 5 (streaming) failed; the error is above"; exit 1; }
    awk -v d="${out}/wav" '{print $1, d "/" $1 ".wav"}' "${scp}" > "${out}/wav.scp"
    grep -h 'utterances of' "${out}"/logdir/stream.*.log
fi
if [ "${denoise}" = true ] && [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    denoise_tag=$(basename "${denoise_config}" .yaml)
    for dset in "${train_set}" "${valid_set}"; do
        _noise=${noise_scp:-${data_dump}/${dset}/wav.scp}
        out="${data_dump}/${dset}_noisy"
        log "Step 6: noisy pairs: ${data_dump}/${dset} + ${_noise} at SNRs ${snrs} dB -> ${out}"
        ${train_cmd} "${out}/logdir/make_noisy.log" "${python}" -m codectk.bin.make_noisy \
            --clean "${data_dump}/${dset}" --noise_scp "${_noise}" --snrs "${snrs}" --out "${out}" \
            || { log "Error: step 6 (noisy pairs of ${dset}) failed; the error is above"; exit 1; }
    done
    log "Step 6: denoising encoder: ${denoise_config} -> ${expdir}/codec_${denoise_tag}"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${denoise_config}" \
        --tag "${denoise_tag}" --train_set "${train_set}_noisy" --valid_set "${valid_set}_noisy" \
        --train_args "${denoise_args}"
fi
log "Successfully finished in ${SECONDS} s: ${vocoder_exp}/scores/${test_set}"
