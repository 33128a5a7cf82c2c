"""Tiny random-initialised models of every class the model grounders load, saved like real checkpoints
(config, weights, tokenizer, preprocessor config) so tests and the speed benchmark run the user's loading
path offline. Their outputs are meaningless; only shapes and pipeline behaviour are real."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]
_WORD_TEXT = ("yes no Yes No is the a an of in on this image frame true following answer or with and to it red blue "
              "green yellow white black block cube plate bottle gripper left right robot arm drawer open closed "
              "table bowl cup box lid handle user assistant system . , ? : \" ' ( )")
WORDS = _WORD_TEXT.split(" ")


def _seed(seed: int = 0) -> None:
    """Fixed initial weights: the same tiny model every build."""
    import torch

    torch.manual_seed(seed)


def tiny_tokenizer(lowercase: bool = False):
    """A word-level fast tokenizer over SPECIALS + WORDS (punctuation split off), built without downloads."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(SPECIALS + WORDS))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    if lowercase:
        tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return tk, vocab, PreTrainedTokenizerFast, processors


def _bert_tokenizer():
    tk, vocab, Fast, processors = tiny_tokenizer(lowercase=True)
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                      special_tokens=[("[CLS]", vocab["[CLS]"]),
                                                                      ("[SEP]", vocab["[SEP]"])])
    return Fast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"), vocab


def build_grounding_dino(path: str | Path, image: int = 64, d_model: int = 32) -> Path:
    """Tiny GroundingDinoForObjectDetection (Swin + BERT) with a word-level tokenizer and a PIL processor."""
    _seed()
    from transformers import BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    tok, vocab = _bert_tokenizer()
    bb = SwinConfig(image_size=image, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                    window_size=4, out_features=["stage2", "stage3", "stage4"])
    txt = BertConfig(vocab_size=len(vocab), hidden_size=d_model, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=2 * d_model, max_position_embeddings=64, pad_token_id=0)
    cfg = GroundingDinoConfig(backbone_config=bb, text_config=txt, d_model=d_model, encoder_layers=1,
                              decoder_layers=2, encoder_ffn_dim=d_model, decoder_ffn_dim=d_model,
                              encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20,
                              max_text_len=32, encoder_n_points=2, decoder_n_points=2)
    p = Path(path)
    GroundingDinoForObjectDetection(cfg).save_pretrained(p)
    tok.save_pretrained(p)
    GroundingDinoImageProcessorPil(size={"shortest_edge": image, "longest_edge": int(image * 1.5)}).save_pretrained(p)
    return p


def build_owlv2(path: str | Path, image: int = 64, hidden: int = 32) -> Path:
    """Tiny Owlv2ForObjectDetection with a word-level tokenizer and a PIL processor."""
    _seed()
    from transformers import Owlv2Config, Owlv2ForObjectDetection
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    tok, vocab = _bert_tokenizer()
    cfg = Owlv2Config(
        text_config=dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0,
                         bos_token_id=vocab["[CLS]"], eos_token_id=vocab["[SEP]"]),
        vision_config=dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                           num_attention_heads=2, image_size=image, patch_size=16),
        projection_dim=hidden)
    p = Path(path)
    Owlv2ForObjectDetection(cfg).save_pretrained(p)
    tok.save_pretrained(p)
    Owlv2ImageProcessorPil(size={"height": image, "width": image}).save_pretrained(p)
    return p


def build_sam2_video(path: str | Path, image: int = 128, hidden: int = 128) -> Path:
    """Tiny Sam2VideoModel (Hiera backbone); memory channels stay 64 and hidden > 64 as the model requires."""
    _seed()
    import json

    from transformers import Sam2VideoConfig, Sam2VideoModel

    S, D = image, hidden
    cfg = Sam2VideoConfig(
        vision_config=dict(
            model_type="sam2_vision_model",
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=16, image_size=[S, S],
                                 blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                                 num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 2],
                                 global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2]),
            backbone_channel_list=[128, 64, 32, 16], backbone_feature_sizes=[[S // 4] * 2, [S // 8] * 2, [S // 16] * 2],
            fpn_hidden_size=D),
        prompt_encoder_config=dict(hidden_size=D, image_size=S, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=D, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16),
        image_size=S, num_maskmem=3, memory_attention_hidden_size=D, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32, memory_attention_rope_feat_sizes=[S // 16, S // 16],
        memory_encoder_hidden_size=D, memory_encoder_output_channels=64, mask_downsampler_embed_dim=D,
        memory_fuser_embed_dim=D, memory_fuser_intermediate_dim=32)
    p = Path(path)
    Sam2VideoModel(cfg).save_pretrained(p)
    (p / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "size": {"height": S, "width": S}}))
    return p


def build_sam3_video(path: str | Path, image: int = 112, hidden: int = 128) -> Path:
    """Tiny Sam3VideoModel (ViT detector + CLIP text + DETR + tracker) with detection thresholds at 0 so random
    weights still produce objects, a word-level tokenizer and a preprocessor config."""
    _seed()
    import json

    from transformers import Sam3VideoConfig, Sam3VideoModel

    tok, vocab = _bert_tokenizer()
    S, D, g = image, hidden, image // 14
    vision = dict(model_type="sam3_vision_model", fpn_hidden_size=D,
                  backbone_feature_sizes=[[g * 4] * 2, [g * 2] * 2, [g] * 2],
                  backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=2, image_size=S, patch_size=14,
                                       window_size=4, global_attn_indexes=[1], pretrain_image_size=S))
    layer = dict(hidden_size=D, num_layers=1, num_attention_heads=2, intermediate_size=64)
    detector = dict(vision_config=vision,
                    text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, projection_dim=32,
                                     num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                                     pad_token_id=0, bos_token_id=vocab["[CLS]"], eos_token_id=vocab["[SEP]"]),
                    geometry_encoder_config=layer, detr_encoder_config=layer,
                    detr_decoder_config={**layer, "num_queries": 8}, mask_decoder_config=dict(hidden_size=D,
                                                                                              num_attention_heads=2))
    tracker = dict(vision_config=vision, image_size=S, num_maskmem=3,
                   prompt_encoder_config=dict(hidden_size=D, image_size=S, patch_size=14, mask_input_channels=4),
                   mask_decoder_config=dict(hidden_size=D, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16),
                   memory_attention_hidden_size=D, memory_attention_num_layers=1,
                   memory_attention_feed_forward_hidden_size=32, memory_attention_rope_feat_sizes=[g, g],
                   memory_encoder_hidden_size=D, memory_encoder_output_channels=64, mask_downsampler_embed_dim=D,
                   memory_fuser_embed_dim=D, memory_fuser_intermediate_dim=32)
    cfg = Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=g * 4,
                          hotstart_delay=2, hotstart_unmatch_thresh=1, hotstart_dup_thresh=1,
                          score_threshold_detection=0.0, new_det_thresh=0.0, max_num_objects=16)
    p = Path(path)
    Sam3VideoModel(cfg).save_pretrained(p)
    tok.save_pretrained(p)
    (p / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": S, "width": S}}))
    return p


def build_qwen2_vl(path: str | Path, hidden: int = 32, layers: int = 1, max_pixels: int = 112 * 112) -> Path:
    """Tiny Qwen2VLForConditionalGeneration with a word-level tokenizer (the chat special tokens included)
    and the PIL image processor."""
    _seed()
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tk, vocab, Fast, _ = tiny_tokenizer()
    tok = Fast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", additional_special_tokens=SPECIALS[4:])
    half = hidden // 4  # head_dim / 2 with two heads; the M-RoPE sections (t, h, w) must sum to it
    sec = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": sec},
                         bos_token_id=vocab["<|im_start|>"], eos_token_id=vocab["<|im_end|>"], pad_token_id=0),
        vision_config=dict(depth=1, embed_dim=hidden, hidden_size=hidden, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"])
    p = Path(path)
    Qwen2VLForConditionalGeneration(cfg).save_pretrained(p)
    tok.save_pretrained(p)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels, patch_size=14, merge_size=2,
                             temporal_patch_size=2).save_pretrained(p)
    return p


def build_idefics3(path: str | Path, image: int = 64) -> Path:
    """Tiny Idefics3ForConditionalGeneration with its own processor (Idefics3Processor + the PIL image
    processor, a word-level tokenizer and a small chat template): the generic AutoProcessor VLM path."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    _seed()
    tk, _, Fast, _ = tiny_tokenizer()
    extra = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
             *(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6))]
    tok = Fast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", additional_special_tokens=extra)
    patch, scale = 16, 2
    cfg = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image, patch_size=patch),
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=0),
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=scale)
    template = ("{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}"
                "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")
    ip = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": image},
                                   max_image_size={"longest_edge": image})
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=(image // patch) ** 2 // scale ** 2,
                             chat_template=template)
    p = Path(path)
    Idefics3ForConditionalGeneration(cfg).save_pretrained(p)
    proc.save_pretrained(p)
    return p


def build_all(root: str | Path, scale: str = "tiny") -> dict[str, Path]:
    """Every tiny model under `root` (role → directory) plus `root/ltlreward.toml` pointing at them.
    scale "bench" makes them bigger so model time is not dwarfed by fixed costs."""
    root = Path(root)
    big = scale == "bench"
    dirs = {
        "grounding_dino": build_grounding_dino(root / "gdino", image=256 if big else 96, d_model=64 if big else 32),
        "owlv2": build_owlv2(root / "owlv2", image=384 if big else 64, hidden=128 if big else 32),
        "sam2": build_sam2_video(root / "sam2", image=512 if big else 128, hidden=128),
        "sam3": build_sam3_video(root / "sam3", image=504 if big else 112, hidden=128),
        "vlm": build_qwen2_vl(root / "vlm", hidden=128 if big else 32, layers=4 if big else 1,
                              max_pixels=224 * 224 if big else 112 * 112),
    }
    lines = ["[models]"] + [f'{k} = "{v}"' for k, v in dirs.items()] + ["allow_download = false", "",
             "[runtime]", 'device = "cpu"', "cpu_threads = 1", "detector_batch = 4", "vlm_batch = 8", ""]
    (root / "ltlreward.toml").write_text("\n".join(lines) + "\n")
    return dirs
