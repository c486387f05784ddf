# Mini scale only: the base model (MiniFlow, stopped early to leave room for RL) and the
# preference model that is both the preference task's reward and its metric.


if WORLD:

    rule pretrain:
        input:
            rules.world.output.geneval_train,
            rules.world.output.ocr_train,
        output:
            f"{RUNS}/miniflow/model/model.pt",
        params:
            world=lambda wc, input: os.path.dirname(os.path.dirname(input[0])),
            folder=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),
            steps=WORLD["pretrain_steps"],
            batch_size=WORLD["pretrain_batch_size"],
            seed=WORLD["seed"],
            caption_noise=WORLD.get("caption_noise", 0),
            channels=" ".join(str(c) for c in WORLD.get("channels", [32, 64, 128])),
            text_fraction=WORLD.get("text_fraction", 0.4),
            position_aware="--position-aware" if WORLD.get("position_aware", False) else "",
            sign_noise=WORLD.get("sign_noise", "substitute"),
        threads: WORLD["pretrain_threads"]
        log:
            f"{RUNS}/logs/pretrain.log",
        benchmark:
            f"{RUNS}/benchmarks/pretrain.tsv"
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
