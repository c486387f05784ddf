# Mini scale only: the base models (MiniFlow, stopped early to leave room for RL; a task may name
# a base of its own under world.bases) and the preference model that is both the preference task's reward and its metric.
# world.published_bases names a folder of them shipped with the repository (as the paper's study starts from
# SD3.5-M and PickScore): a base made with this study's settings is installed from it, any other is pretrained.


if WORLD:
    PUBLISHED = published_bases()

    rule bases:
        # The study's starting point: the bases its tasks train on, the preference model and the
        # world's prompts (what benchmarks/mini_rl_gain.py needs beside the bases).
        input:
            [f"{RUNS}/{name}/model/model.pt" for name in BASE_NAMES],
            f"{RUNS}/preference/model.pt",
            rules.world.output,

    rule publish_bases:
        # Pretrain (with world.published_bases: null) and collect the bases to ship: copy the output
        # folder to the repository's data/ and point world.published_bases at it.
        input:
            rules.bases.input,
        output:
            f"{RUNS}/published_bases/manifest.json",
        params:
            bases=" ".join(
                f"--base {name} {shlex.quote(published_folder(name))} {shlex.quote(json.dumps(published_settings(name)))}"
                for name in BASE_NAMES + ["preference"]
            ),
            folder=lambda wc, output: os.path.dirname(output[0]),
        log:
            f"{RUNS}/logs/publish_bases.log",
        conda:
            ENV
        shell:
            "superflow publish-bases {params.bases} --output-dir {params.folder} > {log} 2>&1"

    if PUBLISHED:

        ruleorder: install_published_base > pretrain
        ruleorder: install_published_base > preference_model

        rule install_published_base:
            input:
                manifest=f"{WORLD['published_bases']}/manifest.json",
            output:
                f"{RUNS}/{{published}}/model.pt",
            wildcard_constraints:
                published="|".join(re.escape(published_target(name)) for name in PUBLISHED),
            params:
                published=lambda wc, input: os.path.dirname(input.manifest),
                name=lambda wc: published_name(wc.published),
                folder=lambda wc, output: os.path.dirname(output[0]),
            log:
                f"{RUNS}/logs/install_base/{{published}}.log",
            conda:
                ENV
            shell:
                "superflow install-base --published {params.published} --name {params.name}"
                " --output-dir {params.folder} > {log} 2>&1"

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
            caption_noise=lambda wc: published_settings(wc.base)["caption_noise"],
            channels=lambda wc: " ".join(str(c) for c in published_settings(wc.base)["channels"]),
            text_fraction=lambda wc: published_settings(wc.base)["text_fraction"],
            position_aware=lambda wc: "--position-aware" if published_settings(wc.base)["position_aware"] else "",
            sign_noise=lambda wc: published_settings(wc.base)["sign_noise"],
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
