"""Three encoded MP3 frames, each a steady buzz at one pitch; the sandbox's audio is made of them.

Each is one MPEG-1 Layer III frame (128 kbps, 44.1 kHz, mono) without its 4-byte header and
trailing zero bytes, base64-encoded. LAME 3.100 encoded them with the bit reservoir off, so a frame
depends on no other, from a buzz whose fundamental (``k * 44100 / 1152`` Hz) repeats exactly once a
frame: repeated, a frame decodes to the steady tone. ``tests/fixtures/encode_tones.py`` re-makes them.
"""

from __future__ import annotations

import base64

PITCHES_HZ = {"low": 5 * 44100 / 1152, "mid": 6 * 44100 / 1152, "high": 7 * 44100 / 1152}

_ENCODED = {
    "low": (
        "AAPMRC0KAP/BQZiFoUAf+Chz61hBPRYi6DD1gGTzZqA5wrDjCwpImHLhafmizh6ZWAGlg8dM9UC4rFNPV09MwPCEixgYZ6AD"
        "JWBx+nT2IRb/qOdTttn+a++WNdy1Mr2c/luskd969trb000+vY9ci2eFB4Z9a4gl5Yi6DD2AGXzZqRA0rDjCwpImIIhaXmiz"
        "B7BWAGlg8dM9UC4rFNPVw9IwPSEyxgYZ6ADJWBx+i21LEk1ychZ1bzn0/T1oVRmpd/Mqtq/euTyM0xlmW0MWlUV63ZE7i25i"
        "O5MQU1FMy4xMDA=="
    ),
    "mid": (
        "AAPLJEEKC/qMgWSIIUF/UZDCPW0DAhKEYuIGCeEIsTwMLUYRUjwYJdwiiqlaWvljicrgC8saiFaQnli/YrRi9WEUQMT/XI5P"
        "qcjJ5Bb9xPJ3b+n3Ju+/fv/3/kVPZoyV1T639m1UlkOryeEetoGBCUIxcQME8IRYngYWowipHgwS7hFFVK0tfLHE5XAF5Y1E"
        "K0hPLF+xWjF6sIogYn+uRyfU5GTyC37ieTu39PuTd9+/f/v/IqezRkrqn1v7NqpLIdXk0xBTUUzLjEwM"
    ),
    "high": (
        "AAPM2D0KAH/BgZaH4UF/+KDh9awjh+ixFuGJhB42vNmREvysKF8sKRoCJ7isC180TsT1MFQrTyx3sHTypYaPThO4sBMlY/xY"
        "vPK06TBSB7/0xf/qu/alX11Osducz9lKEPrhotZkLn0ou3Bp1bHFv/2hUBJVna+ncD61xHHLEW4YpYHj66bMgKXFYUL5YUjz"
        "E9wAArAtfNE6E9DBVK18sd7B08qhHnpyneWAmSsf4sXnladJgpg9aVf4vympz37/fRXP1K2ejo9uvfM7FQvfuV/0u6lpJf8K"
        "bwlSxv1JiCmopmXGJgY="
    ),
}


def tone_payload(name: str, size: int) -> bytes:
    """The frame of tone ``name`` after its header, zero-filled to ``size`` bytes."""
    payload = base64.b64decode(_ENCODED[name])
    if len(payload) > size:
        raise ValueError(f"tone {name!r} needs {len(payload)} bytes, more than {size}")
    return payload + bytes(size - len(payload))
