#!/usr/bin/env bash
# Re-measure every figure the README quotes. Usage: scripts/measure.sh DATA_DIR [OUT_DIR]
# DATA_DIR holds ferplus/, fer2013/ and videos/ (see the README's "Measured" section).
set -euo pipefail
data=${1:?usage: scripts/measure.sh DATA_DIR [OUT_DIR]}
out=${2:-out/measure}
mkdir -p "$out"
tw=".venv/bin/tiltwatch"
clip="$data/videos/yakhyo_headpose__in_video.mp4"
single="$data/videos/pyfeat__WolfgangLanger_Pexels.mp4"

echo "== emotion model: FER+ test, FER2013 PrivateTest (with and without TTA); recorded in the default model's card"
$tw eval --dataset "ferplus:$data/ferplus" --json "$out/ferplus.json" --confusion docs/ferplus_confusion.png --card ferplus_test
$tw eval --dataset "ferplus:$data/ferplus" --tta --json "$out/ferplus_tta.json" --card ferplus_test_tta
$tw eval --dataset "fer2013-folders:$data/fer2013" --json "$out/fer2013.json" --card fer2013_private_test
$tw eval --dataset "fer2013-folders:$data/fer2013" --tta --json "$out/fer2013_tta.json" --card fer2013_private_test_tta
echo "== one preprocessing path: training crops vs the live detect/mesh/align path"
$tw eval --dataset "ferplus:$data/ferplus" --agreement 500 --json "$out/agreement.json" --card preprocessing_agreement
small="--model ferplus_fer2013_vgg_small"
for other in "$small" "--model ferplus_fer2013_vgg_deep" "--model ferplus_fer2013_vgg_deep_x2_int8" "--model ferplus_fer2013_vgg_deep_x4_int8" "--model ferplus_fer2013_vgg_deep_tv_x4_int8" "--model ferplus_fer2013_vgg_deep_kd_x4_int8"; do  # the other shipped models, into their own cards
  for ds in "ferplus:$data/ferplus" "fer2013-folders:$data/fer2013"; do
    key=$([[ $ds == ferplus:* ]] && echo ferplus_test || echo fer2013_private_test)
    $tw eval --dataset "$ds" $other --card "$key"
    $tw eval --dataset "$ds" $other --tta --card "${key}_tta"
  done
done
echo "== speed (stop other work on the machine first)"
$tw bench "$clip" --streams 1 --frames 300 --compare --json "$out/bench_group_1.json"
$tw bench "$data/videos/face_recognition__short_hamilton_clip.mp4" --streams 1 --frames 275 --no-encode --compare --json "$out/bench_dim_audience.json"
$tw bench "$clip" --streams 1 --frames 300 --no-encode --json "$out/bench_group_noenc.json"
$tw bench "$clip" --streams 1 --frames 200 --no-encode --tta --json "$out/bench_group_tta.json"
$tw bench "$clip" --streams 1 --frames 300 --detect-every 1 --emotion-every 1 --json "$out/bench_group_exact.json"
$tw bench "$clip" --streams 1 --frames 300 --model ferplus_fer2013_vgg_small --json "$out/bench_group_small.json"
$tw bench "$clip" --streams 4 --streams 8 --frames 150 --no-encode --json "$out/bench_group_multi.json"
$tw bench "$single" --streams 1 --frames 400 --json "$out/bench_single.json"
for t in 1 2 3; do $tw bench "$clip" --streams 1 --frames 150 --no-encode --tiles $t --json "$out/bench_group_tiles$t.json"; done
echo "== head pose without a mesh: detector keypoints against the mesh's pose"
.venv/bin/python scripts/keypoint_pose_agreement.py "$data"/videos/*.mp4
echo "== small faces in a wide view, with and without detector tiles"
.venv/bin/python scripts/small_faces.py "$clip"
$tw bench --emotion-only --json "$out/bench_emotion.json"
$tw bench --emotion-only --threads 2 --json "$out/bench_emotion_2threads.json"
$tw bench --emotion-only --threads 2 $small --json "$out/bench_emotion_small_2threads.json"
echo "== the group clip end to end"
$tw analyze "$clip" --out "$out/group" --overwrite -q
