"""The emotion classes tiltwatch speaks, in the FER+ order, and the default model's name."""

#: The shipped model the pipeline, ``eval`` and ``bench`` use unless told otherwise.
DEFAULT_MODEL = "ferplus_fer2013_kd_x5_int8"

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
