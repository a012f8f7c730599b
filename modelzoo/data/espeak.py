"""eSpeak NG, the speech synthesizer the speech datasets are made with, driven through its
C API with ctypes.

The ``espeakng-loader`` wheel (the ``[speech]`` extra) ships ``libespeak-ng`` and its voice
data: :class:`ESpeak` calls ``espeak_Initialize`` with synchronous output to a callback that
collects the samples, ``espeak_SetVoiceByName``, ``espeak_SetParameter`` for rate, pitch and
pitch range, and ``espeak_Synth``. Nothing is downloaded.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.errors import ConfigError

__all__ = ["ESpeak", "espeak_available"]

# eSpeak NG C API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _loader() -> Any:
    try:
        import espeakng_loader
    except ImportError as err:
        raise ConfigError(
            "speech synthesis needs eSpeak NG from the espeakng-loader wheel: "
            "pip install 'modelzoo[speech]' (or pip install espeakng-loader)"
        ) from err
    return espeakng_loader


def espeak_available() -> bool:
    """Whether the eSpeak NG library and its data can be found."""
    try:
        loader = _loader()
        return Path(loader.get_library_path()).is_file() and Path(loader.get_data_path()).is_dir()
    except (ConfigError, RuntimeError):
        return False


class ESpeak:
    """eSpeak NG through ctypes: ``ESpeak().synthesize("seven", "en-us+f2")``.

    Every call loads a private copy of the library afresh and unloads it afterwards
    (``dlclose``), so no state carries from one utterance to the next and the output is
    the same in every process. Calls are serialised by a lock (the library and libc's
    random generator are process-wide).
    """

    _lock = threading.Lock()
    _private_copy: Path | None = None

    def __init__(self) -> None:
        loader = _loader()
        if sys.platform == "win32":
            raise ConfigError(
                "eSpeak NG synthesis here needs dlclose to reset the library between "
                "utterances; it runs on Linux and macOS"
            )
        self.library_path = Path(loader.get_library_path())
        try:
            self.data_path = Path(loader.get_data_path())
        except RuntimeError as err:
            raise ConfigError(f"espeakng-loader has no voice data: {err}") from err
        if not self.library_path.is_file():
            raise ConfigError(
                f"espeakng-loader's library {self.library_path} is missing; reinstall it: "
                "pip install --force-reinstall espeakng-loader"
            )
        self._libc = ctypes.CDLL(None)
        self._libc.dlclose.argtypes = [ctypes.c_void_p]
        self._libc.srand.argtypes = [ctypes.c_uint]
        self.sample_rate = 22050  # set by espeak_Initialize
        self._info: str | None = None

    @classmethod
    def _copy(cls, source: Path) -> Path:
        """A copy of the library only this module opens: another user of espeakng-loader
        in the process would otherwise share (and keep alive) the same instance."""
        if cls._private_copy is None or not cls._private_copy.is_file():
            folder = Path(tempfile.mkdtemp(prefix="modelzoo-espeak-"))
            target = folder / source.name
            shutil.copyfile(source, target)
            cls._private_copy = target
            import atexit

            atexit.register(shutil.rmtree, folder, True)
        return cls._private_copy

    def _open(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(str(self._copy(self.library_path)), mode=os.RTLD_LOCAL)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            self._close(lib, initialized=False)
            raise ConfigError(
                f"espeak_Initialize failed (returned {rate}) with data at {self.data_path}; "
                "reinstall espeakng-loader"
            )
        self.sample_rate = rate
        return lib

    def _close(self, lib: ctypes.CDLL, initialized: bool = True) -> None:
        if initialized:
            lib.espeak_Terminate()
        self._libc.dlclose(lib._handle)

    @property
    def version(self) -> str:
        """The library's version string, e.g. ``1.52.0``."""
        if self._info is None:
            with self._lock:
                lib = self._open()
                try:
                    self._info = (lib.espeak_Info(None) or b"").decode()
                finally:
                    self._close(lib)
        return self._info

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        *,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        word_gap: int = 0,
        seed: int = 0,
    ) -> np.ndarray:
        """``text`` spoken by ``voice``, as int16 samples at :attr:`sample_rate` (22050 Hz).

        Args:
            text: what to say (UTF-8; digits are read as numbers, so spell them out).
            voice: an eSpeak voice name, optionally with a variant: ``"en-us+m3"``.
            rate: words per minute (80..450).
            pitch: base pitch, 0..99 (50 is the voice's own).
            pitch_range: pitch variation, 0 (monotone) .. 99.
            word_gap: extra pause between words, in units of 10 ms.
            seed: the library's random seed (aspiration and breath noise).
        """
        checks = ((rate, 80, 450, "rate"), (pitch, 0, 99, "pitch"), (pitch_range, 0, 99, "range"))
        for value, low, high, name in checks:
            if not low <= value <= high:
                raise ConfigError(f"eSpeak {name} must be in [{low}, {high}]; got {value}")
        chunks: list[np.ndarray] = []

        def collect(wav: Any, count: int, events: Any) -> int:
            if count > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0  # 0: go on synthesizing

        callback = _SYNTH_CALLBACK(collect)
        payload = text.encode("utf-8") + b"\0"
        with self._lock:
            lib = self._open()
            try:
                lib.espeak_SetSynthCallback(callback)
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ConfigError(
                        f"eSpeak NG has no voice {voice!r}; use one of its language voices "
                        "(e.g. en-us, en-gb-scotland), optionally with +variant (e.g. "
                        "en-us+f2; ESpeak().variants() lists them)"
                    )
                for parameter, value in (
                    (_RATE, rate),
                    (_PITCH, pitch),
                    (_RANGE, pitch_range),
                    (_WORDGAP, word_gap),
                ):
                    lib.espeak_SetParameter(parameter, int(value), 0)
                lib.espeak_ng_SetRandSeed(seed)
                self._libc.srand(seed & 0xFFFFFFFF)  # the Klatt voices draw from libc rand()
                status = lib.espeak_Synth(
                    payload, len(payload), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                if status != 0:
                    raise ConfigError(f"espeak_Synth failed with status {status} for {text!r}")
                lib.espeak_Synchronize()
            finally:
                self._close(lib)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def variants(self) -> list[str]:
        """The voice variants this eSpeak installation ships."""
        folder = self.data_path / "voices" / "!v"
        return sorted(p.name for p in folder.iterdir() if p.is_file())
