#!/bin/sh
# Generates a small synthetic music library for the training tests: three "genres" with
# distinct timbre and rhythm, 3 s each, FLAC at 22050 Hz mono.
#   gen_library.sh DIR folders  -> DIR/<genre>/<genre>.NN.flac (labels from folder names)
#   gen_library.sh DIR tags     -> DIR/artistK/tNN.flac with GENRE tags in mixed spellings,
#                                  ARTIST tags, some untagged files, some tagged by genred
# Needs sox and ffmpeg; exits 77 when either is missing.
set -eu
dir=$1
mode=$2
command -v sox >/dev/null || { echo "skip: sox not installed"; exit 77; }
command -v ffmpeg >/dev/null || { echo "skip: ffmpeg not installed"; exit 77; }
mkdir -p "$dir"

# synth KIND INDEX OUT: a 3 s clip whose pitch/tempo vary with INDEX so no two are the same
synth() {
    kind=$1 si=$2 out=$3
    case $kind in
    bass) # low square pulses, a slow beat
        f=$((55 + (si * 7) % 40)); sox -q -n -r 22050 -c 1 "$out" synth 3 square $f \
            tremolo $((2 + si % 3)) 100 gain -6 ;;
    bells) # high sine chords, no beat
        f=$((1200 + (si * 37) % 600)); sox -q -n -r 22050 -c 1 "$out" synth 3 sine $f \
            sine $((f * 3 / 2)) remix - gain -6 ;;
    noise) # fast noise bursts
        sox -q -n -r 22050 -c 1 "$out" synth 3 pinknoise tremolo $((9 + si % 5)) 100 \
            highpass 1500 gain -8 ;;
    esac
}

if [ "$mode" = folders ]; then
    for g in bass bells noise; do
        mkdir -p "$dir/$g"
        for i in 0 1 2 3 4 5 6 7; do synth $g $i "$dir/$g/$g.0$i.flac"; done
    done
    exit 0
fi

# tags mode: tag IN OUT GENRE ARTIST [CONFIDENCE] writes a tagged copy with ffmpeg (FLAC
# comments); an empty GENRE writes none
tag() {
    if [ -n "${5:-}" ]; then
        ffmpeg -v error -y -i "$1" -c copy -metadata "genre=$3" -metadata "artist=$4" \
            -metadata "GENRED_CONFIDENCE=$5" -metadata "GENRED_MODEL=0123456789ab" "$2"
    elif [ -n "$3" ]; then
        ffmpeg -v error -y -i "$1" -c copy -metadata "genre=$3" -metadata "artist=$4" "$2"
    else
        ffmpeg -v error -y -i "$1" -c copy -metadata "artist=$4" "$2"
    fi
}
tmp="$dir/.raw"
mkdir -p "$tmp"
n=0
for g in bass bells noise; do
    case $g in
    bass) spell1="Hip Hop" spell2="hip-hop" spell3="HipHop" ;;
    bells) spell1="Classical" spell2="classical" spell3="CLASSICAL" ;;
    noise) spell1="Noise Rock" spell2="noise-rock" spell3="Noise rock" ;;
    esac
    for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
        n=$((n + 1))
        artist="$g-artist$((i / 2))"  # two files per artist: a group must never be split
        mkdir -p "$dir/$artist"
        synth $g $i "$tmp/$g$i.flac"
        out="$dir/$artist/t$(printf %02d $n).flac"
        case $((i % 6)) in
        0|1|2) tag "$tmp/$g$i.flac" "$out" "$spell1" "$artist" ;;
        3) tag "$tmp/$g$i.flac" "$out" "$spell2" "$artist" ;;
        4) tag "$tmp/$g$i.flac" "$out" "$spell3" "$artist" ;;
        5) tag "$tmp/$g$i.flac" "$out" "" "$artist" ;;  # untagged: no genre
        esac
    done
done
# tagged by genred itself, with a genre no hand-tagged file has: must never become a label
for i in 0 1 2 3; do
    synth bells $((i + 20)) "$tmp/g$i.flac"
    mkdir -p "$dir/genred-tagged"
    tag "$tmp/g$i.flac" "$dir/genred-tagged/g$i.flac" Polka machine 0.912
done
rm -rf "$tmp"
