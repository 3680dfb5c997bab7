#!/usr/bin/env bash
# codectk's staged codec recipe (stage numbers as ESPnet's codec1). Every recipe's
# run.sh states its corpus choices and calls this script. Each stage is a few lines
# calling `python -m codectk.bin.<step>`; logic lives in tested Python (the options and
# the files each stage needs are checked first, by codectk.bin.check_recipe).
# --codec_exp decodes and scores (stages 6, 7, 10) any experiment folder, model file
# (e.g. `codectk convert` of a released model) or packed .zip without training:
#   ./run.sh --stage 6 --stop_stage 7 --codec_exp exp/dac_44khz/model.pt --tag dac_44khz
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0
run_args=$(printf '%q ' "$0" "$@")

# General options.
stage=1              # first stage to run
stop_stage=8         # last stage to run
skip_data_prep=false # skip stages 1-4
skip_train=false     # skip stage 5
skip_eval=false      # skip stages 6-7
skip_packing=false   # skip stage 8
ngpu=0               # GPUs per node for training (0: CPU; N > 1: DDP via torchrun; no CUDA: N CPU processes)
num_nodes=1          # nodes for training (M > 1: srun + torchrun rendezvous, needs cmd_backend=slurm)
nj=4                 # parallel jobs for data preparation
inference_nj=4       # parallel jobs for decoding
gpu_inference=false  # decode on GPU
dumpdir=dump         # dumped data
expdir=exp           # experiments
python=python3       # python with codectk installed (path.sh puts tools/venv first)
show_sets=false      # print the recipe's train_set, valid_set, test_sets, dumpdir, expdir, python (key=value) and exit

# Data options.
local_data_opts=""   # options passed to local/data.sh
fs=16000             # sample rate (Hz) the audio is dumped at; must match the codec
min_wav_duration=0.5 # shorter training/validation utterances are dropped (s)
max_wav_duration=30  # longer training/validation utterances are dropped (s)
audio_error=stop     # stage 2 on an unreadable audio file: stop, or skip (listed in <dump>/dropped)
train_set=""         # training set name (data/<name>)
valid_set=""         # validation set name
test_sets=""         # space-separated evaluation sets

# Training options.
train_config=""      # training YAML
train_args=""        # config overrides, e.g. "--max_steps 200 --codec_conf.encoder.n_filters 16"
tag=""               # experiment name suffix (default: from train_config and train_args)
codec_exp=""         # experiment folder (default: ${expdir}/codec_${tag}), or a model file / packed .zip for stages 6, 7, 10 (outputs: ${expdir}/codec_${tag}, tag default: its file name)

# Decoding and scoring options.
inference_config=""  # YAML of decoding options (e.g. target_bandwidth: 1.6)
inference_args=""    # more decoding options, e.g. "--target_bandwidth 1.6"
inference_model=valid.mel_distance.ave.pt # model file in the experiment folder
inference_tag=""     # suffix of decode/score folders (default: from inference_model)
decode_bandwidths="" # decode/score at each of these kbps (e.g. "1.5 3 6"), plus one table over them
scoring_opts=""      # options for codectk.bin.score, e.g. "--nj 2"
metrics=""           # stage 7 metrics, e.g. "pesq,stoi,visqol,wer" (default: every installed one)
anchors=""           # stage 7: classical anchors scored into ${expdir}/anchors, e.g. "opus codec2"
anchor_opts=""       # options for codectk.bin.anchors, e.g. "--opus_kbps 6,12 --nj 4"
report_exps=""       # more experiment folders drawn in the stage-7 report
report_opts=""       # options for codectk.bin.report, e.g. "--n_utts 4 --mushra_systems opus_6,..."

# Upload and token options.
hf_repo=""           # stage 9: Hugging Face repository user/name (uploaded when HF_TOKEN is set)
token_sets=""        # stage 10: sets to tokenize (default: train, valid and test sets)
token_opts=""        # options for codectk.bin.extract_tokens, e.g. "--npy true --target_bandwidth 1.6"

help_message="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<sets>\" --train_config <yaml> [options]
Stages: 1 data prep, 2 wav dump, 3 length filter, 4 statistics, 5 training,
        6 decoding, 7 scoring (+ anchors, report), 8 packing, 9 upload, 10 token extraction.
Options [default]:
$(grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^ #]*) *# *(.*)$/  --\1 [\2] \3/')"

log "${run_args}"
# shellcheck disable=SC1091
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "${help_message}"
    log "Error: stray positional arguments: $*"
    exit 2
fi
# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./cmd.sh
# train_cmd, cuda_cmd and decode_cmd come from the recipe's cmd.sh.
: "${train_cmd:?cmd.sh must set train_cmd}" "${cuda_cmd:?cmd.sh must set cuda_cmd}" "${decode_cmd:?cmd.sh must set decode_cmd}"

if [ "${show_sets}" = true ]; then  # the phase drivers (audiodec.sh, ladiffcodec.sh) ask run.sh
    printf '%s=%s\n' train_set "${train_set}" valid_set "${valid_set}" test_sets "${test_sets}" \
        dumpdir "${dumpdir}" expdir "${expdir}" python "${python}"
    exit 0
fi
# The model stages 6-10 read (model_args) and the folder stages 5-10 write (out_exp).
if [ -f "${codec_exp}" ]; then  # a model file or packed .zip, read as it is
    [ -n "${tag}" ] || { tag=$(basename "${codec_exp}"); tag=${tag%.*}; }
    out_exp="${expdir}/codec_${tag}"
    model_args=(--model "${codec_exp}")
else
    if [ -z "${tag}" ] && [ -n "${train_config}" ]; then
        tag="$(basename "${train_config}" .yaml)"
        [ -n "${train_args}" ] && tag+="$(echo "${train_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')"
    fi
    out_exp=${codec_exp:-${expdir}/codec_${tag}}
    model_args=(--model "${out_exp}" --model_file "${inference_model}")
    # The averaged n-best model of any criterion (valid.<metric>.ave.pt) is the default: no suffix.
    if [ -z "${inference_tag}" ] && [[ "${inference_model}" != valid.*.ave.pt ]]; then
        inference_tag="$(basename "${inference_model}" .pt)"
    fi
fi
stats_dir="${expdir}/codec_stats_${fs}"
data_dump="${dumpdir}/raw"
_sfx=${inference_tag:+_${inference_tag}}
_decode_device=cpu
[ "${gpu_inference}" = true ] && _decode_device=cuda

# Everything this run reads is checked before any stage starts (options, the files earlier
# stages make, config keys, bitrates, anchors): one line naming the problem, exit 2.
if ! ${python} -m codectk.bin.check_recipe --stage "${stage}" --stop_stage "${stop_stage}" \
    --skip_data_prep "${skip_data_prep}" --skip_train "${skip_train}" --skip_eval "${skip_eval}" \
    --skip_packing "${skip_packing}" --train_set "${train_set}" --valid_set "${valid_set}" \
    --test_sets "${test_sets}" --token_sets "${token_sets}" --dumpdir "${dumpdir}" --expdir "${expdir}" \
    --train_config "${train_config}" --train_args="${train_args}" --tag "${tag}" --codec_exp "${codec_exp}" \
    --inference_config "${inference_config}" --inference_model "${inference_model}" \
    --inference_tag "${inference_tag}" --decode_bandwidths "${decode_bandwidths}" --anchors "${anchors}" \
    --hf_repo "${hf_repo}"; then
    log "Error: bad options (the line above says which); nothing was run"
    exit 2
fi

# Split <scp> into at most <n> parts <dir>/<name>.JOB.scp; prints the number of parts.
split_list() {
    local scp=$1 n=$2 dir=$3 name=$4 outs=() i lines
    if [ ! -s "${scp}" ]; then
        log "Error: ${scp} is missing or empty: nothing to split" >&2
        return 1
    fi
    lines=$(wc -l < "${scp}")
    [ "${n}" -le "${lines}" ] || n=${lines}
    for i in $(seq "${n}"); do outs+=("${dir}/${name}.${i}.scp"); done
    utils/split_scp.pl "${scp}" "${outs[@]}" || return 1
    echo "${n}"
}
# Folder suffix of a decoding bandwidth: "all" -> "", 1.5 -> _1.5kbps.
bw_sfx() { if [ "$1" = all ]; then echo ""; else echo "_$1kbps"; fi; }
# Concatenate <dir>/output.*/<file> into <dest>, LC_ALL=C sorted, atomically.
merge() {
    local dir=$1 file=$2 dest=$3 f
    for f in "${dir}"/output.*/"${file}"; do cat "${f}"; done | LC_ALL=C sort > "${dest}.tmp"
    mv "${dest}.tmp" "${dest}"
}
# A failed job array: run.pl / slurm.pl have printed the failing log's tail; remove the
# step's half-made outputs <path>... (its logs stay) and stop.
failed() {
    local what=$1
    shift
    rm -rf "$@"
    log "Error: ${what} failed; the error is above (full logs: the files run.pl named)"
    exit 1
}

if ! "${skip_data_prep}"; then
    if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
        log "Stage 1: data prep: local/data.sh ${local_data_opts} -> data/{${train_set},${valid_set},${test_sets// /,}}"
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
        for dset in ${train_set} ${valid_set} ${test_sets}; do
            if [ ! -d "data/${dset}" ]; then
                log "Error: local/data.sh made no data/${dset}; it made: $(cd data && echo */ | tr -d /)"
                exit 1
            fi
            utils/validate_data_dir.sh --no-text --no-feats "data/${dset}"
        done
        log "Stage 1 done at ${SECONDS} s"
    fi

    if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
        for dset in ${train_set} ${valid_set} ${test_sets}; do
            if [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; then
                out="${data_dump}/org/${dset}"
            else
                out="${data_dump}/${dset}"
            fi
            log "Stage 2: dump wav: data/${dset} -> ${out} (fs=${fs}, nj=${nj})"
            mkdir -p "${out}/logdir"
            rm -rf "${out}"/logdir/output.*
            _nj=$(split_list "data/${dset}/wav.scp" "${nj}" "${out}/logdir" wav)
            ${train_cmd} JOB=1:"${_nj}" "${out}/logdir/dump_wav.JOB.log" \
                ${python} -m codectk.bin.dump_wav --fs "${fs}" --in_scp "${out}/logdir/wav.JOB.scp" \
                    --out_wav_dir "${out}/data" --out_dir "${out}/logdir/output.JOB" \
                    --on_error "${audio_error}" || failed "Stage 2 (dump of data/${dset})" "${out}/logdir"/output.*
            merge "${out}/logdir" wav.scp "${out}/wav.scp"
            merge "${out}/logdir" utt2num_samples "${out}/utt2num_samples"
            merge "${out}/logdir" dropped "${out}/dropped"
            if [ -s "${out}/dropped" ]; then
                log "Stage 2: skipped $(wc -l < "${out}/dropped") unreadable file(s) of data/${dset}, listed with reasons in ${out}/dropped"
            fi
            for f in utt2spk spk2utt spk2gender text; do
                if [ -f "data/${dset}/${f}" ]; then cp "data/${dset}/${f}" "${out}/${f}"; fi
            done
            echo "${fs}" > "${out}/fs"
            utils/fix_data_dir.sh "${out}"
            utils/validate_data_dir.sh --no-text --no-feats "${out}"
        done
        log "Stage 2 done at ${SECONDS} s"
    fi

    if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
        for dset in ${train_set} ${valid_set}; do
            log "Stage 3: length filter [${min_wav_duration}, ${max_wav_duration}] s: ${data_dump}/org/${dset} -> ${data_dump}/${dset}"
            ${python} -m codectk.bin.filter_length --fs "${fs}" --min_wav_duration "${min_wav_duration}" \
                --max_wav_duration "${max_wav_duration}" "${data_dump}/org/${dset}" "${data_dump}/${dset}"
            utils/validate_data_dir.sh --no-text --no-feats "${data_dump}/${dset}"
        done
        log "Stage 3 done at ${SECONDS} s"
    fi

    if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
        for dset in ${train_set} ${valid_set}; do
            log "Stage 4: statistics: ${data_dump}/${dset} -> ${stats_dir}/${dset}"
            ${train_cmd} "${stats_dir}/logdir/stats.${dset}.log" \
                ${python} -m codectk.bin.collect_stats --fs "${fs}" "${data_dump}/${dset}" "${stats_dir}/${dset}" \
                || failed "Stage 4 (statistics of ${data_dump}/${dset})"
            grep 'collect_stats:' "${stats_dir}/logdir/stats.${dset}.log" | tail -n 1
        done
        log "Stage 4 done at ${SECONDS} s"
    fi
fi

if ! "${skip_train}" && [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "Stage 5: training: ${train_config} ${train_args} -> ${out_exp} (log: ${out_exp}/train.log)"
    mkdir -p "${out_exp}"
    echo "${run_args} # $(date)" >> "${out_exp}/run.sh"
    # train.log grows over re-runs (--append-log): a resumed run keeps its first part's log.
    # shellcheck disable=SC2086
    if ! ${cuda_cmd} --append-log true --gpu "${ngpu}" --num_nodes "${num_nodes}" "${out_exp}/train.log" \
        ${python} -m codectk.bin.train --config "${train_config}" --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
            --train_data "${data_dump}/${train_set}" --valid_data "${data_dump}/${valid_set}" \
            --output_dir "${out_exp}" ${train_args}; then
        if [ -f "${out_exp}/checkpoint.pt" ]; then
            log "Error: training failed (the error is above; log: ${out_exp}/train.log); ${out_exp}/checkpoint.pt holds the last validated step: re-running stage 5 resumes from it"
        else
            log "Error: training failed before its first checkpoint (the error is above; log: ${out_exp}/train.log); fix it and re-run stage 5"
        fi
        exit 1
    fi
    log "Stage 5 done at ${SECONDS} s: $(grep -o 'inference model: .*' "${out_exp}/train.log" | tail -n 1)"
fi

if ! "${skip_eval}"; then
    if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
        _opts=()
        [ -n "${inference_config}" ] && _opts+=(--config "${inference_config}")
        _cmd=${decode_cmd}
        [ "${gpu_inference}" = true ] && _cmd=${cuda_cmd}
        for dset in ${test_sets}; do
          for bw in ${decode_bandwidths:-all}; do
            dir="${out_exp}/decode_${dset}${_sfx}$(bw_sfx "${bw}")"
            _bw_opts=()
            [ "${bw}" != all ] && _bw_opts=(--target_bandwidth "${bw}")
            log "Stage 6: decoding: ${data_dump}/${dset} with ${model_args[*]} ${_bw_opts[*]} -> ${dir}"
            mkdir -p "${dir}/logdir"
            rm -rf "${dir}"/logdir/output.*
            _nj=$(split_list "${data_dump}/${dset}/wav.scp" "${inference_nj}" "${dir}/logdir" keys)
            # shellcheck disable=SC2086
            ${_cmd} JOB=1:"${_nj}" "${dir}/logdir/decode.JOB.log" \
                ${python} -m codectk.bin.codec_inference "${model_args[@]}" \
                    --in_scp "${dir}/logdir/keys.JOB.scp" --out_dir "${dir}/logdir/output.JOB" \
                    --wav_dir "${dir}/wav" --device "${_decode_device}" "${_opts[@]}" "${_bw_opts[@]}" ${inference_args} \
                || failed "Stage 6 (decoding ${data_dump}/${dset})" "${dir}/wav" "${dir}"/logdir/output.* \
                    "${dir}"/*.scp "${dir}/codes.json" "${dir}/bitrate"
            merge "${dir}/logdir" wav.scp "${dir}/wav.scp"
            merge "${dir}/logdir" codes.scp "${dir}/codes.scp"
            cp "${dir}/logdir/output.1/codes.json" "${dir}/codes.json"
            cp "${dir}/logdir/output.1/bitrate" "${dir}/bitrate"
          done
        done
        log "Stage 6 done at ${SECONDS} s"
    fi

    if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
        for dset in ${test_sets}; do
          _outs=()
          _score_opts=(${metrics:+--metrics "${metrics}"})  # with the set's transcripts (wer, cer)
          if [ -f "${data_dump}/${dset}/text" ]; then _score_opts+=(--text "${data_dump}/${dset}/text"); fi
          for bw in ${decode_bandwidths:-all}; do
            dir="${out_exp}/decode_${dset}${_sfx}$(bw_sfx "${bw}")"
            out="${out_exp}/scores/${dset}${_sfx}$(bw_sfx "${bw}")"
            _outs+=("${out}")
            log "Stage 7: scoring: ${dir} against ${data_dump}/${dset} -> ${out} (log: ${out}/score.log)"
            # shellcheck disable=SC2086
            ${decode_cmd} "${out}/score.log" ${python} -m codectk.bin.score --ref_scp "${data_dump}/${dset}/wav.scp" \
                --deg_scp "${dir}/wav.scp" --codes_scp "${dir}/codes.scp" --bitrate_kbps "$(cat "${dir}/bitrate")" \
                --out_dir "${out}" "${_score_opts[@]}" ${scoring_opts} || failed "Stage 7 (scoring ${dir})"
            cat "${out}/summary.txt"
          done
          if [ -n "${decode_bandwidths}" ]; then
            log "Stage 7: one table over bitrates -> ${out_exp}/scores/${dset}${_sfx}_bitrates.{tsv,txt}"
            ${python} -m codectk.bin.bitrate_table "${_outs[@]}" --out "${out_exp}/scores/${dset}${_sfx}_bitrates"
          fi
        done
        for dset in ${anchors:+${test_sets}}; do
            log "Stage 7: anchors ${anchors} on ${data_dump}/${dset} -> ${expdir}/anchors (log: ${expdir}/anchors/anchors.${dset}.log)"
            _score_opts=(${metrics:+--metrics "${metrics}"})
            if [ -f "${data_dump}/${dset}/text" ]; then _score_opts+=(--text "${data_dump}/${dset}/text"); fi
            # shellcheck disable=SC2086
            ${decode_cmd} "${expdir}/anchors/anchors.${dset}.log" ${python} -m codectk.bin.anchors --anchors "${anchors}" \
                --ref_scp "${data_dump}/${dset}/wav.scp" --set "${dset}" --anchors_dir "${expdir}/anchors" \
                "${_score_opts[@]}" ${anchor_opts} \
                || failed "Stage 7 (anchors on ${data_dump}/${dset})"
        done
        log "Stage 7: report -> ${out_exp}/report/{index,mushra}.html"
        # shellcheck disable=SC2086
        ${python} -m codectk.bin.report --exp_dirs "${out_exp}" ${report_exps} --anchors_dir "${expdir}/anchors" \
            --sets ${test_sets} --suffix "${_sfx}" --out_dir "${out_exp}/report" ${report_opts}
        log "Stage 7 done at ${SECONDS} s"
    fi
fi

if ! "${skip_packing}" && [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ] && [ -f "${codec_exp}" ]; then
    log "Stage 8: nothing to pack: --codec_exp ${codec_exp} is a model file already"
elif ! "${skip_packing}" && [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    packed="${out_exp}/packed/codec_${tag}.zip"
    log "Stage 8: packing: ${out_exp}/${inference_model} -> ${packed}"
    ${python} -m codectk.bin.pack --exp_dir "${out_exp}" --model_file "${inference_model}" \
        --out "${packed}" --scores_dir "${out_exp}/scores"
    log "Stage 8 done at ${SECONDS} s"
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
    log "Stage 9: upload: ${out_exp} -> ${out_exp}/hf_repo -> huggingface.co/${hf_repo}"
    ${python} -m codectk.bin.upload --exp_dir "${out_exp}" --packed "${out_exp}/packed/codec_${tag}.zip" \
        --repo_id "${hf_repo}" --out_dir "${out_exp}/hf_repo" --report_dir "${out_exp}/report" \
        --train_data "${data_dump}/${train_set}" --valid_data "${data_dump}/${valid_set}"
    log "Stage 9 done at ${SECONDS} s"
fi

if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
    _cmd=${decode_cmd}
    [ "${gpu_inference}" = true ] && _cmd=${cuda_cmd}
    for dset in ${token_sets:-${train_set} ${valid_set} ${test_sets}}; do
        out="${out_exp}/tokens/${dset}"
        log "Stage 10: token extraction: ${data_dump}/${dset} -> ${out} (log: ${out}/extract_tokens.log)"
        # shellcheck disable=SC2086
        ${_cmd} "${out}/extract_tokens.log" ${python} -m codectk.bin.extract_tokens "${model_args[@]}" \
            --data "${data_dump}/${dset}" --out_dir "${out}" \
            --device "${_decode_device}" ${token_opts} || failed "Stage 10 (tokens of ${data_dump}/${dset})"
    done
    log "Stage 10 done at ${SECONDS} s"
fi

log "Successfully finished in ${SECONDS} s. [elapsed=${SECONDS}s]"
