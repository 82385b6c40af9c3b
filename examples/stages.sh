# Shell helpers of the example pipelines (sourced by shapes.sh and your-model.sh): every step is
# skipped when its output is already there, so an interrupted run continues and a finished one
# reruns in seconds. Delete an output to make it again.

# stage OUT innx ARGS…: skip a finished OUT, resume an interrupted one, else run; prints OUT
stage() {
    local out=$1; shift
    if [[ -f "$out/manifest.json" ]] || [[ "$out" == *.h5 && "$(innx info "$out" --json 2>/dev/null \
            | grep -c '"complete": true')" == 1 ]]; then
        echo "$out"
    elif [[ -f "$out/resume/checkpoint.json" || -f "$out" ]]; then
        "$@" -o "$out" --resume
    else
        "$@" -o "$out"
    fi
}

# render MODE … -o FILE: skipped when FILE is there
render() { [[ -f "${*: -1}" ]] || innx render "$@" >/dev/null; }

# report ARGS…: innx analyze ARGS… -o report, skipped when report/ is finished; prints report
report() {
    if [[ -f report/report.json ]]; then
        echo report
    else
        innx analyze "$@" -o report --overwrite
    fi
}
