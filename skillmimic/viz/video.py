"""Frames to video: H.264 mp4 through imageio's ffmpeg plugin (imageio-ffmpeg ships the ffmpeg binary), or an
animated GIF (a file name ending in .gif; Pillow writes it) for pages that show pictures only, like a README.

    python -m skillmimic.viz.video FRAMES_DIR OUT.mp4 --fps 30

FRAMES_DIR holds PNG (or JPEG) images, taken in file-name order; all must have one size.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Iterable

import imageio.v2 as imageio
import numpy as np
from PIL import Image
from tyro.conf import Positional

from skillmimic.cli import run_command
from skillmimic.errors import UserError
from skillmimic.outputs import check_file
from skillmimic.torchfile import first_sentence

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


SUFFIXES = (".mp4", ".gif")  # what write_video writes (check the name before the frames are made: outputs.py)
SIM_HZ = 60  # control steps per second of simulated time


def frames_due(step: int, fps: float, hz: float = SIM_HZ) -> int:
    """How many frames a recording at `fps` holds once control step `step` (0-based, `hz` steps a second) is shown:
    one at step 0, then one each time the simulated time passes a multiple of 1/fps. Recording the step shown
    whenever this exceeds the frames recorded keeps a video at any fps up to hz as fast as the simulation (taking
    every round(hz / fps)-th step plays 2x fast at 45 fps)."""
    return math.floor(step * fps / hz + 1e-9) + 1


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 30.0) -> int:
    """Write (H, W, 3) uint8 frames to an mp4, or to an animated GIF that loops when `path` ends in .gif; returns
    the number written (at least one: no frames is a UserError, and no file). H and W are best even (H.264)."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise UserError(f"{path}: no frames to write; nothing was recorded")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        return _write_gif(itertools.chain([first], frames), path, fps)
    n = 0
    try:
        # macro_block_size=1 keeps odd sizes as they are rather than resizing them.
        with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1) as writer:
            for frame in itertools.chain([first], frames):
                writer.append_data(np.asarray(frame))
                n += 1
    except (OSError, RuntimeError) as e:  # ffmpeg could not write the file: it closes the pipe, or says why
        why = e.strerror if isinstance(e, OSError) and e.strerror else first_sentence(str(e)) or type(e).__name__
        raise UserError(f"{path}: the video could not be written (ffmpeg stopped: {why})") from None
    if not path.is_file():  # a few small frames fit in the pipe: ffmpeg's failure to open the file goes unreported
        raise UserError(f"{path}: the video could not be written (ffmpeg made no file)")
    return n


def _write_gif(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    """An animated GIF of the frames, looping, with one palette for all (the median cut of up to 8 frames spread
    over the clip, so that colours which appear late have entries too). The frames are held in memory until the
    palette is made: meant for short, small animations."""
    arrays = [np.asarray(f)[..., :3] for f in frames]
    if not arrays:
        raise UserError(f"{path}: no frames to write")
    images = [Image.fromarray(a) for a in arrays]
    sample = np.concatenate(arrays[:: max(1, len(arrays) // 8)][:8], axis=0)  # frames stacked vertically
    palette = Image.fromarray(sample).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    quantized[0].save(path, save_all=True, append_images=quantized[1:], duration=round(1000 / fps), loop=0,
                      optimize=True)
    return len(images)


def frames_in(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of frames")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: no .png or .jpg frames in it")
    return files


def folder_to_video(folder: str | Path, path: str | Path, fps: float = 30.0) -> int:
    """Every image of `folder`, in name order, into the mp4 `path`. Returns the frame count."""
    files = frames_in(folder)
    first = imageio.imread(files[0]).shape

    def frames():
        for f in files:
            img = imageio.imread(f)
            if img.shape != first:
                raise UserError(f"{f}: size {img.shape[:2]} differs from the first frame's {first[:2]}")
            yield img[..., :3]

    return write_video(frames(), path, fps)


@dataclasses.dataclass
class Args:
    frames: Positional[str]
    """Folder of frames (PNG or JPEG), in file-name order."""
    out: Positional[str]
    """The mp4 (or .gif) to write."""
    fps: float = 30.0
    """Frames per second."""


def main(args: Args) -> None:
    if not args.fps > 0:
        raise UserError(f"--fps {args.fps:g}: must be positive")
    check_file(args.out, "OUT", SUFFIXES)  # before the frames are read
    n = folder_to_video(args.frames, args.out, args.fps)
    print(f"wrote {args.out}: {n} frames at {args.fps:g} fps")


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
