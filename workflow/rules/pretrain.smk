# Mini scale only: the base models (MiniFlow, stopped early to leave room for RL; a task may name
# a base of its own under world.bases) and the preference model that is both the preference task's reward and its metric.


if WORLD:

    rule pretrain:
        # One job per base folder: the world's (miniflow) and each of world.bases a task names.
        input:
            rules.world.output.geneval_train,
            rules.world.output.ocr_train,
        output:
            f"{RUNS}/{{base}}/model/model.pt",
        params:
            world=lambda wc, input: os.path.dirname(os.path.dirname(input[0])),
            folder=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),
            steps=lambda wc: base_settings(wc.base)["pretrain_steps"],
            batch_size=WORLD["pretrain_batch_size"],
            seed=WORLD["seed"],
            caption_noise=lambda wc: base_settings(wc.base).get("caption_noise", 0),
            channels=lambda wc: " ".join(str(c) for c in base_settings(wc.base).get("channels", [32, 64, 128])),
            text_fraction=lambda wc: base_settings(wc.base).get("text_fraction", 0.4),
            position_aware=lambda wc: "--position-aware" if base_settings(wc.base).get("position_aware") else "",
            sign_noise=lambda wc: base_settings(wc.base).get("sign_noise", "substitute"),
        threads: WORLD["pretrain_threads"]
        # Every training job waits on a base: both bases first, side by side, keep the cores busy
        # (without it the second base started at minute 58 of the 2026-12-05 study).
        priority: 50
        log:
            f"{RUNS}/logs/pretrain/{{base}}.log",
        benchmark:
            f"{RUNS}/benchmarks/pretrain/{{base}}.tsv"
        conda:
            ENV
        shell:
            # --resume: a killed pretraining continues from its last checkpoint.
            "superflow pretrain --data-dir {params.world} --output-dir {params.folder} --steps {params.steps}"
            " --batch-size {params.batch_size} --seed {params.seed} --caption-noise {params.caption_noise}"
            " --sign-noise {params.sign_noise} --channels {params.channels} --text-fraction {params.text_fraction} {params.position_aware} --threads {threads} --resume --quiet > {log} 2>&1"

    rule preference_model:
        input:
            rules.world.output.geneval_train,
            rules.world.output.geneval_test,
        output:
            f"{RUNS}/preference/model.pt",
        params:
            world=lambda wc, input: os.path.dirname(os.path.dirname(input[0])),
            folder=lambda wc, output: os.path.dirname(output[0]),
            steps=WORLD["preference_steps"],
            seed=WORLD["seed"],
        threads: 1
        log:
            f"{RUNS}/logs/preference_model.log",
        benchmark:
            f"{RUNS}/benchmarks/preference_model.tsv"
        conda:
            ENV
        shell:
            "OMP_NUM_THREADS={threads} superflow train-preference --data-dir {params.world} --output-dir {params.folder}"
            " --steps {params.steps} --seed {params.seed} --quiet > {log} 2>&1"
