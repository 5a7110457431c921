"""One DPO run the way a researcher writes it with TRL alone (the baseline of sweep-vs-plain.mjs).

python plain_trl.py <model_dir> <data.jsonl> <beta> <steps> <out_dir>
"""

import json
import sys

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

from dpo_sweep_worker.data import load_rows

model_dir, data, beta, steps, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = load_rows(data, "train", "hh", task="preference").rows
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
ref = AutoModelForCausalLM.from_pretrained(model_dir)
cfg = DPOConfig(
    output_dir=out, beta=beta, loss_type=["sigmoid"], max_length=256, per_device_train_batch_size=8,
    max_steps=steps, learning_rate=5e-4, lr_scheduler_type="constant", seed=42, logging_steps=1,
    save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, bf16=False,
    gradient_checkpointing=False, dataloader_num_workers=0,
)
trainer = DPOTrainer(model=model, ref_model=ref, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
result = trainer.train()
trainer.save_model(out + "/final")
print(json.dumps({"train_loss": result.training_loss}))
