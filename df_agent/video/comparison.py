"""The long-rollout comparison behind `df-agent eval video`: Diffusion Forcing and the baselines whose
checkpoints are given, rolled out from the same held-out context frames far past the training length and scored
(`evaluate.py`), with a rollout strip (PNG) and a side-by-side animation (GIF/MP4) of the first rollout.

The episode store is opened by a function passed in (`data.video_maze.store.VideoEpisodes`): the model package
does not read datasets itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

HELD_OUT_FALLBACK = 16  # held-out episodes assumed for a checkpoint that records none (the training default)


class EpisodeStore(Protocol):
    """What the comparison reads from a video episode store (`data.video_maze.store.VideoEpisodes`)."""

    resolution: int

    @property
    def num_episodes(self) -> int: ...

    def split(self, test_episodes: int) -> tuple[np.ndarray, np.ndarray]: ...

    def episode(self, index: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]: ...

    def load(self, key: str, episodes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class ComparisonSettings:
    checkpoint: str  # Diffusion Forcing video checkpoint
    out: Path  # the results file: the default encoder and media folders sit next to it
    teacher_forcing: str | None = None  # checkpoint of the teacher-forcing baseline
    full_sequence: str | None = None  # checkpoint of the causal full-sequence baseline
    data: str | None = None  # episode store (None: the one recorded in the checkpoint)
    media_dir: Path | None = None  # None: OUT_STEM_media/ next to `out`
    rollouts: int = 4  # held-out episodes to roll out from
    context_frames: int = 8
    rollout_multiple: float = 10.0  # rollout length / training length
    sampling_steps: int = 20
    stabilization_step: int = 1  # DDIM step index whose level labels re-fed frames (0 = no stabilisation)
    reference_frames: int = 3000  # real frames defining the data statistics
    encoder_dir: Path | None = None  # feature encoder (trained and saved here if missing; None: next to `out`)
    encoder_steps: int = 400
    seed: int = 0


def load_video_model(path: str) -> tuple[Any, dict[str, Any]]:
    """The video model in checkpoint `path` and its metadata; other model types are refused."""
    import df_agent.video.model  # noqa: F401  (registers the model type)
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config

    config = read_checkpoint_config(path)
    if config["model_type"] != "video_df":
        raise ValueError(f"{path} holds a {config['model_type']!r} model, not a video model (video_df)")
    return load_checkpoint(path, config=config), config.get("metadata", {})


def _method_models(settings: ComparisonSettings) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The DF checkpoint's model, {training mode: model} of all checkpoints given, and the DF one's metadata."""
    model, metadata = load_video_model(settings.checkpoint)
    models = {model.config.training_mode: model}
    for mode, path in (("teacher_forcing", settings.teacher_forcing), ("full_sequence", settings.full_sequence)):
        if path:
            other, _ = load_video_model(path)
            if other.config.training_mode != mode:
                raise ValueError(f"{path} was trained as {other.config.training_mode!r}, not {mode!r}")
            models[mode] = other
    return model, models, metadata


def _held_out_store(settings: ComparisonSettings, model: Any, data_info: dict[str, Any],
                    open_store: Callable[[str], EpisodeStore]) -> tuple[EpisodeStore, str, list[int]]:
    """The store the model was trained on (or `settings.data`), its path and the held-out episode ids."""
    data_path = settings.data or data_info.get("dataset")
    if not data_path:
        raise ValueError("no --data given and the checkpoint records no dataset")
    store = open_store(data_path)
    if store.resolution != model.config.resolution:
        raise ValueError(f"{data_path} holds {store.resolution}px video, the model expects {model.config.resolution}px")
    test_ids = data_info.get("test_episodes") or store.split(HELD_OUT_FALLBACK)[1].tolist()
    if len(test_ids) < settings.rollouts:
        raise ValueError(f"only {len(test_ids)} held-out episodes for {settings.rollouts} rollouts")
    return store, data_path, test_ids


def _real_frames(settings: ComparisonSettings, store: EpisodeStore, test_ids: list[int], training_frames: int,
                 total_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground truth [rollouts, T, H, W, 3] of the first held-out episodes, reference frames of training episodes
    (the data distribution) and held-out frames for the real-data floor."""
    episodes = [store.episode(int(i), keys=("video",))["video"] for i in test_ids[: settings.rollouts]]
    shortest = min(len(e) for e in episodes)
    if shortest < training_frames:
        raise ValueError(f"held-out episodes have {shortest} frames, fewer than the training length {training_frames}")
    ground_truth = np.stack([e[:shortest] for e in episodes])
    train_ids = [i for i in range(store.num_episodes) if i not in set(test_ids)]
    rng = np.random.default_rng(settings.seed)
    train_video, _ = store.load("video", train_ids[: max(1, settings.reference_frames // 100)])
    reference = train_video[rng.choice(len(train_video), min(settings.reference_frames, len(train_video)),
                                       replace=False)]
    test_video, _ = store.load("video", test_ids)
    # As many real held-out frames as a method contributes far frames, so the floor has the same sample-size bias.
    far_count = settings.rollouts * (total_frames - total_frames // 2)
    test_frames = test_video[rng.choice(len(test_video), min(far_count, len(test_video)), replace=False)]
    return ground_truth, reference, test_frames


def _roll_out_methods(models: dict[str, Any], context: Any, total_frames: int,
                      eval_settings: Any) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """{method: uint8 rollouts} of every method whose checkpoint was given, and the seconds each took."""
    from df_agent.video.evaluate import METHODS, rollout

    rollouts, timings = {}, {}
    for method, (mode, _) in METHODS.items():
        if mode not in models:
            log.info("skipping %s: no %s checkpoint given", method, mode)
            continue
        start = time.perf_counter()
        rollouts[method] = rollout(method, models[mode], context, total_frames, eval_settings)
        timings[method] = time.perf_counter() - start
        log.info("%s: %d frames x %d rollouts in %.1f s", method, total_frames, len(context), timings[method])
    return rollouts, timings


def _save_media(media: Path, ground_truth: np.ndarray, rollouts: dict[str, np.ndarray], training_frames: int,
                total_frames: int, context_frames: int) -> list[str]:
    """The first rollout of every method beside the ground truth: a strip of frames and an animation."""
    from df_agent.video.visualize import save_animation, save_strip

    rows = {"ground truth": ground_truth[0], **{m: v[0] for m, v in rollouts.items()}}
    marks = sorted({*range(0, training_frames + 1, max(1, training_frames // 4)),
                    *np.linspace(training_frames, total_frames - 1, 9).astype(int).tolist()})
    files = [str(save_strip(media / "rollout_strip.png", rows, marks, context_frames))]
    return files + [str(p) for p in save_animation(media / "rollouts", rows, every=2)]


def compare_video_methods(settings: ComparisonSettings, open_store: Callable[[str], EpisodeStore]) -> dict[str, Any]:
    """Roll out and score every method the checkpoints allow; returns the results record (scores per method,
    the real-data floor, settings, timings, the media files written)."""
    from df_agent.optional import require

    require("cv2", "imageio", extra="video")  # rollout strips and animations
    import torch

    from df_agent.video.encoder import encode_frames, load_or_train_encoder
    from df_agent.video.evaluate import EvalSettings, real_data_floor, score_rollouts, settings_record

    torch.manual_seed(settings.seed)
    model, models, metadata = _method_models(settings)
    data_info = metadata.get("data", {})
    store, data_path, test_ids = _held_out_store(settings, model, data_info, open_store)
    training_frames = model.config.training_frames
    eval_settings = EvalSettings(context_frames=settings.context_frames, rollout_multiple=settings.rollout_multiple,
                                 sampling_steps=settings.sampling_steps,
                                 stabilization_step=settings.stabilization_step, seed=settings.seed)
    total_frames = eval_settings.rollout_frames(training_frames, model.config.frame_stack)
    ground_truth, reference, test_frames = _real_frames(settings, store, test_ids, training_frames, total_frames)
    context = torch.from_numpy(ground_truth[:, : settings.context_frames].copy())
    out = Path(settings.out)
    encoder_dir = Path(settings.encoder_dir) if settings.encoder_dir else out.parent / "video_feature_encoder"
    encoder = load_or_train_encoder(encoder_dir, reference, steps=settings.encoder_steps)

    def features(frames: np.ndarray) -> np.ndarray:
        return encode_frames(encoder, frames)

    rollouts, timings = _roll_out_methods(models, context, total_frames, eval_settings)
    scores = score_rollouts(rollouts, ground_truth, reference, training_frames, settings.context_frames, features)
    results = {
        "training_length": training_frames,
        "rollout_length": total_frames,
        "context_frames": settings.context_frames,
        "rollouts": settings.rollouts,
        "settings": settings_record(eval_settings, model.num_levels),
        "psnr_within_horizon": {m: s["psnr_within_horizon"] for m, s in scores.items()},
        "ssim_within_horizon": {m: s["ssim_within_horizon"] for m, s in scores.items()},
        "stability": {m: {k: v for k, v in s.items() if k not in ("psnr_within_horizon", "ssim_within_horizon")}
                      for m, s in scores.items()},
        "real_data_floor": real_data_floor(test_frames, reference, features),
        "rollout_seconds": timings,
        "checkpoints": {"diffusion_forcing": settings.checkpoint, "teacher_forcing": settings.teacher_forcing,
                        "full_sequence": settings.full_sequence},
        "data": str(data_path),
        "test_episodes": [int(i) for i in test_ids[: settings.rollouts]],
    }
    media = Path(settings.media_dir) if settings.media_dir else out.parent / f"{out.stem}_media"
    results["media"] = _save_media(media, ground_truth, rollouts, training_frames, total_frames,
                                   settings.context_frames)
    return results


def results_table(results: dict[str, Any]) -> str:
    """A `compare_video_methods` record as a text table: one row per method, then the real-data floor."""
    table = ["method                          psnr   ssim   drift  statFD  featFD"]
    for method, psnr in results["psnr_within_horizon"].items():
        stability = results["stability"][method]
        table.append(f"{method:30s} {psnr:6.2f} {results['ssim_within_horizon'][method]:6.3f} "
                     f"{stability['stat_drift_far']:6.2f} {stability['stat_frechet_far']:7.3f} "
                     f"{stability.get('feature_frechet_far', float('nan')):7.2f}")
    floor = results["real_data_floor"]
    table.append(f"{'real held-out frames':30s} {'':6s} {'':6s} {floor['stat_drift_far']:6.2f} "
                 f"{floor['stat_frechet_far']:7.3f} {floor.get('feature_frechet_far', float('nan')):7.2f}")
    return "\n".join(table)
