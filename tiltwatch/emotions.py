"""The emotion classes tiltwatch speaks, in the FER+ order, and the default models' names."""

#: The most accurate shipped model within the live budget on a CPU with int8 dot products
#: (VNNI): what ``eval``, ``calibrate`` and ``bench --emotion-only`` measure unless told otherwise.
DEFAULT_MODEL = "ferplus_fer2013_kd_x5_int8"

#: Its choice for a CPU without them: two nets instead of five (0.2 point less on FER+ test),
#: where int8 costs about 2.5 times as much as with VNNI.
NO_VNNI_MODEL = "ferplus_fer2013_vgg_deep_x2_int8"

#: The analyzer's default ``model``: one of the two, chosen for the CPU it runs on
#: (:func:`tiltwatch.vision.emotion.choose_model`).
AUTO_MODEL = "auto"

#: The 8 FER+ classes, in the order of the FER+ label files and of the shipped models.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

#: Usual folder / label spellings mapped to tiltwatch's class names.
SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "sad": "sadness",
    "sadness": "sadness",
    "angry": "anger",
    "anger": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "contempt": "contempt",
}
