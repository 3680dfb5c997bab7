#!/usr/bin/env bash
# AudioDec (Wu et al., ICASSP 2023) as chained experiments, each a call of ./run.sh
# (codec.sh) with its own --train_config and --tag:
#   step 1  data: ./run.sh stages 1-4
#   step 2  symAD: metric losses, then (from discriminator_start_step) the decoder with
#           the discriminators and encoder/projector/quantizer frozen -> exp/codec_<symad>
#           (decoded and scored too with --symad_eval true)
#   step 3  code statistics of the symAD codes on the training set (codectk.bin.code_stats)
#           -> exp/codec_<symad>/code_stats.npy
#   step 4  AD vocoder: --init_from exp/codec_<symad> --codec_conf.stats <step 3>, the
#           analyser frozen; trained, decoded (stage 6) and scored (stage 7)
#   step 5  streaming: `codectk stream` on every test utterance with the vocoder model
#           -> exp/codec_<vocoder>/stream_<test_set>/ (chunk timing in its log)
#   step 6  (--denoise true) denoising: noisy/clean pairs at --snrs (codectk.bin.make_noisy,
#           noise from --noise_scp or, without one, other utterances of the same set),
#           then the symAD encoder + projector trained on them with quantizer and decoder
#           frozen (AudioDec's trainer/denoise.py) -> exp/codec_<symad>_denoise
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
vocoder_config=""    # step 4 training YAML (codec: audiodec)
vocoder_args=""      # step 4 --train_args (added to --init_from and --codec_conf.stats)
test_set=""          # the set decoded, scored and streamed (default: the recipe's first test set)
chunk_ms=12.5        # step 5 streaming chunk (ms)
denoise=false        # run step 6
noise_scp=""         # step 6 noise recordings (wav.scp); empty: other utterances of the set
snrs="0 5 10 15"     # step 6 SNRs (dB)
denoise_args=""      # step 6 --train_args
run_opts=""          # options for every ./run.sh call (e.g. "--nj 8")

help_message="Usage: $0 --symad_config <yaml> --vocoder_config <yaml> [options]
Options [default]:
$(grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^ #]*) *# *(.*)$/  --\1 [\2] \3/')"

# shellcheck disable=SC1091
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "${help_message}"
    log "Error: stray positional arguments: $*"
    exit 2
fi
for opt in symad_config vocoder_config; do
    if [ ! -f "${!opt}" ]; then
        log "${help_message}"
        log "Error: --${opt} '${!opt}': no such file"
        exit 2
    fi
done
# shellcheck disable=SC1091
. ./path.sh
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

symad_tag=$(basename "${symad_config}" .yaml)
vocoder_tag=$(basename "${vocoder_config}" .yaml)
symad_exp="${expdir}/codec_${symad_tag}"
vocoder_exp="${expdir}/codec_${vocoder_tag}"
stats="${symad_exp}/code_stats.npy"

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
    log "Step 3: code statistics: ${symad_exp} on ${data_dump}/${train_set} -> ${stats}"
    # shellcheck disable=SC2086
    "${python}" -m codectk.bin.code_stats --model "${symad_exp}" --data "${data_dump}/${train_set}" --out "${stats}" ${stats_opts}
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Step 4: AD vocoder on ${symad_exp}'s codes: ${vocoder_config} -> ${vocoder_exp} (train, decode, score)"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 7 --train_config "${vocoder_config}" \
        --tag "${vocoder_tag}" --test_sets "${test_set}" \
        --train_args "--init_from ${symad_exp} --codec_conf.stats ${stats} ${vocoder_args}"
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    out="${vocoder_exp}/stream_${test_set}"
    log "Step 5: streaming (${chunk_ms} ms chunks): ${data_dump}/${test_set} with ${vocoder_exp} -> ${out}"
    mkdir -p "${out}/wav"
    : > "${out}/stream.log"
    while read -r utt path; do
        if ! "${python}" -m codectk.bin.stream "${path}" "${out}/wav/${utt}.wav" --model "${vocoder_exp}" \
            --chunk_ms "${chunk_ms}" 2>> "${out}/stream.log"; then
            tail -n 20 "${out}/stream.log" >&2
            log "Error: streaming ${utt} failed (the error is above; log: ${out}/stream.log)"
            exit 1
        fi
    done < "${data_dump}/${test_set}/wav.scp"
    grep -o 'compute per chunk.*delay [0-9.]* ms' "${out}/stream.log" | tail -n 1
fi
if [ "${denoise}" = true ] && [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    for dset in "${train_set}" "${valid_set}"; do
        _noise=${noise_scp:-${data_dump}/${dset}/wav.scp}
        log "Step 6: noisy pairs: ${data_dump}/${dset} + ${_noise} at SNRs ${snrs} dB -> ${data_dump}/${dset}_noisy"
        "${python}" -m codectk.bin.make_noisy --clean "${data_dump}/${dset}" --noise_scp "${_noise}" \
            --snrs "${snrs}" --out "${data_dump}/${dset}_noisy"
    done
    log "Step 6: denoising encoder (quantizer and decoder frozen): ${symad_exp} -> ${symad_exp}_denoise"
    ./run.sh "${opts[@]}" --stage 5 --stop_stage 5 --train_config "${symad_config}" \
        --tag "${symad_tag}_denoise" --train_set "${train_set}_noisy" --valid_set "${valid_set}_noisy" \
        --train_args "--init_from ${symad_exp} --freeze_modules [quantizer,decoder] --freeze_from_step 0 --discriminator_start_step 1000000000 ${denoise_args}"
fi
log "Successfully finished in ${SECONDS} s: ${vocoder_exp}/scores/${test_set}"
