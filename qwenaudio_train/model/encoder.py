"""The audio encoder: Whisper's encoder layers with a forward that follows each clip's length, then pool + ln + proj.

Owns: `AudioEncoder` and building/loading the transformers `WhisperEncoder` it takes its layers from (from dims,
or the encoder half of a Whisper checkpoint read from safetensors without materialising the decoder).
Must not: know about text, tokens or the LLM (beyond the projector's output width), data loading or distributed
training.

Data flow and shapes (A = clips in the batch, d = encoder width, H = LLM width)::

    mel [A, n_mels, L] + lengths [A] (mel frames, L >= max(lengths))
      -> sliced to Lmax = max(lengths), frames past each clip's end zeroed
      -> conv1 (k3 s1) + gelu -> conv2 (k3 s2) + gelu        [A, d, T]    T_i = audio.encoder_frames(L_i)
      -> + embed_positions[:T], Whisper layers with padded frames masked out as keys
      -> AvgPool1d(2, 2) over time                          [A, d, N]    N_i = audio.pooled_frames(T_i)
      -> ln_post (Whisper's final layer norm, applied after the pool as the release does)
      -> proj Linear(d -> H)                                [A, N, H]

Compute follows length exactly: a clip's output depends only on its first L_i mel frames (the batch is cut to
its longest clip, padding is zeroed before each convolution and masked in attention). The release reads one mel
frame past the end at the conv edge; that changes only the last position slightly and made its output depend
on the batch, so we do not copy it.

Audio longer than 30 s: a clip of more than 3000 mel frames holds consecutive 30-s windows (`audio.windowed_log_mel`,
split by `audio.split_frames`). `forward` runs the windows of every clip of the batch as clips of their own, in one
encoder batch (attention never spans two windows: time and memory grow linearly with duration), and joins each
clip's windows' positions in order; `positions` counts the same sum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from qwenaudio_train.audio import RELEASE_CARRY_FRAMES, encoder_frames, pooled_frames, split_frames

if TYPE_CHECKING:  # transformers is imported lazily, by the functions that build
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder


class AudioEncoder(nn.Module):
    """Whisper encoder submodules with a forward that follows each clip's real length, then pool + ln + proj.

    Built from an existing transformers `WhisperEncoder` whose conv1, conv2, embed_positions, layers and final
    layer_norm (here `ln_post`) are taken over; the stock `WhisperEncoder.forward` (which insists on exactly
    3000 frames) is never called. Attention runs through the layers' own attention implementation, chosen by
    `whisper_config._attn_implementation` ("eager" gets an additive float mask, "sdpa" a boolean one,
    "flex_attention" a key-padding BlockMask, "flash_attention_2" the [A, T] padding mask it unpads by).
    """

    def __init__(self, whisper_encoder: WhisperEncoder, llm_hidden_size: int, init_std: float = 0.02):
        super().__init__()
        self.whisper_config = whisper_encoder.config
        d_model = self.whisper_config.d_model
        self.n_mels = self.whisper_config.num_mel_bins
        self.max_mel_frames = self.whisper_config.max_source_positions * 2
        self.dropout = self.whisper_config.dropout
        # The release's front-end edge (evaluating released checkpoints; see `encode_frames` and
        # `audio.release_log_mel`): off for training, where a clip's output depends on that clip alone.
        self.release_compat = False

        self.conv1 = whisper_encoder.conv1  # Conv1d(n_mels, d, k3, p1)
        self.conv2 = whisper_encoder.conv2  # Conv1d(d, d, k3, s2, p1)
        self.embed_positions = whisper_encoder.embed_positions  # [max_source_positions, d], frozen sinusoids
        self.layers = whisper_encoder.layers  # WhisperEncoderLayer x n
        self.pool = nn.AvgPool1d(2, stride=2)
        self.ln_post = whisper_encoder.layer_norm
        dev = self.conv1.weight.device if self.conv1.weight.device.type != "meta" else None
        self.proj = nn.Linear(d_model, llm_hidden_size, device=dev)
        self.audio_bos_eos_token = nn.Embedding(2, llm_hidden_size, device=dev)  # row 0 = bos, row 1 = eos
        # The release inits these like the rest of the LM (normal(0, initializer_range), zero bias).
        with torch.no_grad():
            nn.init.normal_(self.proj.weight, std=init_std)
            nn.init.zeros_(self.proj.bias)
            nn.init.normal_(self.audio_bos_eos_token.weight, std=init_std)

    @property
    def d_model(self) -> int:
        return self.whisper_config.d_model

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer_id(self, name: str) -> int:
        """Depth of a parameter name relative to this module, for layer-wise lr decay: 0 = conv/positions,
        i + 1 = layers.i, n_layers + 1 = ln_post/proj/bos-eos (the top)."""
        if name.startswith("audio."):
            name = name[len("audio.") :]
        if name.startswith(("conv1.", "conv2.", "embed_positions.")):
            return 0
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1
        return self.n_layers + 1

    def positions(self, lengths: torch.Tensor | list[int]) -> list[int]:
        """Audio positions per clip for mel-frame lengths: pooled_frames(encoder_frames(L)), summed over the 30-s
        windows (`audio.split_frames`) of a clip longer than 3000 frames."""
        lengths = lengths.tolist() if isinstance(lengths, torch.Tensor) else list(lengths)
        return [sum(pooled_frames(encoder_frames(w)) for w in split_frames(n)) for n in self._real_lengths(lengths)]

    def _real_lengths(self, lengths: list[int]) -> list[int]:
        """Mel frames of each clip itself: in `release_compat` mode every clip carries RELEASE_CARRY_FRAMES frames
        of the release's padded log-mel past its end (`audio.release_log_mel`), which are not the clip's."""
        carry = RELEASE_CARRY_FRAMES if self.release_compat else 0
        return [int(n) - carry for n in lengths]

    def _attention_mask(self, valid: torch.Tensor, dtype: torch.dtype) -> Any:
        """valid [A, T] bool -> the key-padding mask in the form the layers' attention implementation takes.

        Padded frames are masked as keys only; padded query rows compute garbage that is never read.
        """
        impl = self.whisper_config._attn_implementation
        if impl == "flash_attention_2":
            return valid.long()  # [A, T]: transformers unpads to varlen (no compute on padding)
        if impl == "flex_attention":
            from torch.nn.attention.flex_attention import create_block_mask

            lengths = valid.sum(-1)  # stays on the device: no host sync

            def key_padding(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
                return kv < lengths[b]

            # blocks past a clip's end are skipped, not masked: compute follows length
            t = valid.shape[1]
            return create_block_mask(key_padding, B=valid.shape[0], H=None, Q_LEN=t, KV_LEN=t, device=valid.device)
        mask = valid[:, None, None, :]  # [A, 1, 1, T] broadcast over heads and queries
        if impl == "sdpa":
            return mask  # bool, True = attend
        # eager adds the mask to the scores: 0 where valid, the dtype's most negative finite value elsewhere
        return torch.zeros(mask.shape, dtype=dtype, device=valid.device).masked_fill(~mask, torch.finfo(dtype).min)

    def encode_frames(self, mel: torch.Tensor, lengths: torch.Tensor | list[int]) -> tuple[torch.Tensor, list[int]]:
        """mel [A, n_mels, L], lengths [A] mel frames -> (hidden [A, Tmax, d] after the layers, T_i per clip).

        Hidden rows at t >= T_i are undefined. Before the pool and the final layer norm.
        """
        lengths_list = lengths.tolist() if isinstance(lengths, torch.Tensor) else [int(n) for n in lengths]
        lengths_list = self._real_lengths(lengths_list)
        if mel.dim() != 3 or mel.shape[1] != self.n_mels or len(lengths_list) != mel.shape[0]:
            raise ValueError(
                f"expected mel [A, {self.n_mels}, L] and {mel.shape[0] if mel.dim() == 3 else '?'} lengths, "
                f"got mel {tuple(mel.shape)} and {len(lengths_list)} lengths"
            )
        bad = [n for n in lengths_list if not 1 <= n <= min(mel.shape[2], self.max_mel_frames)]
        if bad:
            raise ValueError(
                f"audio lengths must be in [1, min(L={mel.shape[2]}, {self.max_mel_frames})] mel frames, got {bad}"
            )
        device, dtype = self.conv1.weight.device, self.conv1.weight.dtype
        t_list = [encoder_frames(n) for n in lengths_list]
        l_max, t_max = max(lengths_list), max(t_list)
        lengths_t = torch.tensor(lengths_list, device=device)
        mel_valid = torch.arange(l_max, device=device)[None, :] < lengths_t[:, None]  # [A, Lmax]
        t_valid = torch.arange(t_max, device=device)[None, :] < torch.tensor(t_list, device=device)[:, None]

        if self.release_compat:
            # The release's own cut: the batch's longest clip rounded up to even frames; each clip's convolutions
            # read the padded log-mel past its end (the carried frames), the longest one the conv's zero padding.
            x = mel[:, :, : 2 * t_max].to(device=device, dtype=dtype)
            x = F.gelu(self.conv1(x))
        else:
            x = mel[:, :, :l_max].to(device=device, dtype=dtype)  # compute follows the longest real clip
            # Zero what lies past each clip's end before both convolutions: each conv then sees exactly the zero
            # padding it would see if the clip ran alone.
            x = x * mel_valid[:, None, :].to(dtype)
            x = F.gelu(self.conv1(x)) * mel_valid[:, None, :].to(dtype)  # [A, d, Lmax]
        x = F.gelu(self.conv2(x))  # [A, d, Tmax]
        x = x.permute(0, 2, 1)  # [A, Tmax, d]
        # Module calls, not `.weight` reads: ZeRO-3 gathers a module's parameters only when the module is called.
        x = x + self.embed_positions(torch.arange(t_max, device=device)).to(dtype)
        x = x * t_valid[:, :, None].to(dtype)  # padded frames start at zero (as the release does)
        x = F.dropout(x, p=self.dropout, training=self.training)

        attn_mask = self._attention_mask(t_valid, dtype)
        for layer in self.layers:
            x = layer(x, attn_mask)  # positional: gradient checkpointing needs positional tensors
        return x, t_list

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [A, n_mels, L], lengths [A] mel frames -> (features [A, Nmax, H], positions [A] long).

        features[i, :positions[i]] are clip i's audio positions (rows past that are undefined);
        positions[i] = `self.positions(lengths)[i]` = audio.audio_positions(samples of clip i).
        bos/eos are not included: see `audio_bos_eos_token`.

        A clip longer than 3000 frames (30 s) holds consecutive windows (`audio.windowed_log_mel`: 3000 frames
        each, the last the rest): the windows of all clips run as one encoder batch, each window exactly as if
        it were a clip of its own, and each clip's features are its windows' positions joined in order.
        """
        lengths_list = lengths.tolist() if isinstance(lengths, torch.Tensor) else [int(n) for n in lengths]
        windows = [split_frames(int(n)) for n in self._real_lengths(lengths_list)]
        if self.release_compat or all(len(w) == 1 for w in windows):  # the release cuts at 30 s: no windows
            return self._encode(mel, lengths_list)
        if mel.dim() != 3 or len(lengths_list) != mel.shape[0] or max(lengths_list) > mel.shape[2]:
            raise ValueError(
                f"expected mel [A, {self.n_mels}, L >= max(lengths)] and one length per clip, got mel "
                f"{tuple(mel.shape)} and lengths {lengths_list}"
            )
        rows, window_lengths = [], []
        for a, clip_windows in enumerate(windows):
            start = 0
            for w in clip_windows:
                rows.append(mel[a, :, start : start + w])
                window_lengths.append(w)
                start += w
        w_max = max(window_lengths)
        window_mel = torch.stack([F.pad(r, (0, w_max - r.shape[1])) for r in rows])  # [W, n_mels, <= 3000]
        feats, _ = self._encode(window_mel, window_lengths)  # [W, Nw, H]
        n_w = [pooled_frames(encoder_frames(w)) for w in window_lengths]
        # Re-join: clip a's rows are its windows' first n_w rows, in order; one gather keeps autograd simple.
        stride, index, k = feats.shape[1], [], 0
        for clip_windows in windows:
            index.append([(k + j) * stride + i for j in range(len(clip_windows)) for i in range(n_w[k + j])])
            k += len(clip_windows)
        positions = [len(r) for r in index]
        n_max = max(positions)
        flat_index = torch.tensor([r + [0] * (n_max - len(r)) for r in index], dtype=torch.long, device=feats.device)
        joined = feats.reshape(-1, feats.shape[-1])[flat_index.reshape(-1)].reshape(len(windows), n_max, -1)
        return joined, torch.tensor(positions, dtype=torch.long, device=feats.device)

    def _encode(self, mel: torch.Tensor, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` of clips of <= 3000 frames each (one window per clip)."""
        x, t_list = self.encode_frames(mel, lengths)  # [A, Tmax, d]
        n_list = [pooled_frames(t) for t in t_list]
        if x.shape[1] >= 2:
            # The pool reads frames 2n and 2n+1 < T_i for every n < N_i: it never touches padding.
            x = self.pool(x.permute(0, 2, 1)).permute(0, 2, 1)  # [A, Nmax, d]
        else:
            x = x[:, :0]  # every clip is one encoder frame long: no positions
        x = self.ln_post(x)  # after the pool, as the release does
        x = self.proj(x)  # [A, Nmax, H]
        return x, torch.tensor(n_list, dtype=torch.long, device=x.device)

    def bos_eos(self) -> torch.Tensor:
        """[2, H]: the learned audio bos (row 0) and eos (row 1) embeddings."""
        return self.audio_bos_eos_token(torch.arange(2, device=self.audio_bos_eos_token.weight.device))


def build_whisper_encoder(whisper_config: WhisperConfig, device: str | torch.device | None = None) -> WhisperEncoder:
    """A transformers WhisperEncoder (random init unless built on "meta"). Must not run under zero.Init."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    whisper_config.encoder_layerdrop = 0.0  # layerdrop would make ranks run different layers; unused by us
    if device is None:
        return WhisperEncoder(whisper_config)
    with torch.device(device):
        return WhisperEncoder(whisper_config)


def _resolve_dir(source: str, patterns: list[str]) -> Path:
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    # Honours HF_HUB_OFFLINE (then only the local cache is used).
    return Path(snapshot_download(repo_id=source, allow_patterns=patterns))


def read_whisper_encoder_state_dict(source: str) -> dict[str, torch.Tensor] | None:
    """The encoder tensors of a Whisper checkpoint (WhisperModel, WhisperForConditionalGeneration or
    WhisperEncoder layout), with the prefix ("model.encoder.", "encoder." or "") removed, read from safetensors
    without materialising the decoder. None if the checkpoint has no safetensors files."""
    from safetensors import safe_open

    root = _resolve_dir(source, ["*.json", "*.safetensors"])
    index = root / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = sorted(p.name for p in root.glob("*.safetensors"))
    if not files:
        return None
    keys_by_file: dict[str, list[str]] = {}
    for name in files:
        with safe_open(str(root / name), framework="pt") as f:
            keys_by_file[name] = list(f.keys())
    all_keys = [k for keys in keys_by_file.values() for k in keys]
    conv = [k for k in all_keys if k.endswith("conv1.weight") and "decoder" not in k]
    if len(conv) != 1:
        raise ValueError(f"cannot find one Whisper encoder (conv1.weight) in {source}: found {conv}")
    prefix = conv[0][: -len("conv1.weight")]
    state: dict[str, torch.Tensor] = {}
    for name, keys in keys_by_file.items():
        wanted = [k for k in keys if k.startswith(prefix) and "decoder" not in k[len(prefix) :]]
        if not wanted:
            continue
        with safe_open(str(root / name), framework="pt") as f:
            for k in wanted:
                state[k[len(prefix) :]] = f.get_tensor(k)
    return state


def load_whisper_encoder(source: str, attn_implementation: str = "sdpa") -> WhisperEncoder:
    """The encoder of a Whisper checkpoint (hub name or local dir), without its decoder.

    Built on the meta device and filled from the checkpoint's safetensors (strict: every encoder tensor must be
    present), so neither the decoder nor a random init is ever allocated and no zero.Init is entered. Falls back
    to `WhisperModel.from_pretrained(source).encoder` for checkpoints without safetensors.
    """
    from transformers import WhisperConfig

    whisper_config = WhisperConfig.from_pretrained(source, attn_implementation=attn_implementation)
    state = read_whisper_encoder_state_dict(source)
    if state is None:
        from transformers import WhisperModel

        state = WhisperModel.from_pretrained(source).encoder.state_dict()
    encoder = build_whisper_encoder(whisper_config, device="meta")
    expected = set(encoder.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(
            f"Whisper encoder checkpoint {source} does not match its config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    encoder.load_state_dict(state, strict=True, assign=True)  # keeps the checkpoint's dtype
    return encoder
