"""Per-frame vision stages: detection, face mesh, alignment, head pose, emotion."""

import os

# mediapipe's C++ side logs through glog/absl; keep its INFO/WARNING chatter off the console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
