import json, statistics as st
V = "runs/exp25/val/geneval"
models = {"base": f"{V}/base_eval.json", **{f"fg{s}": f"{V}/flowgrpo/seed{s}/test_eval.json" for s in range(3)}}
tab = {}
for m, p12345 in models.items():
    row = {12345: json.load(open(p12345))}
    for es in (1, 2, 3):
        row[es] = json.load(open(f"runs/exp27/evalnoise/{m}_es{es}.json"))
    tab[m] = row
for key, get in [("partial image", lambda e: e["mean"]), ("partial tag", lambda e: e["tag_mean"]), ("strict tag", lambda e: e["strict"]["tag_mean"])]:
    print("==", key)
    for m, row in tab.items():
        vals = [get(row[es]) for es in (12345, 1, 2, 3)]
        print(m, [round(v, 4) for v in vals], "mean", round(st.mean(vals), 4), "sd over eval seeds", round(st.stdev(vals), 4))
    for es in (12345, 1, 2, 3):
        g = [get(tab[f"fg{s}"][es]) - get(tab["base"][es]) for s in range(3)]
        print(" eval seed", es, "gains", [round(x, 4) for x in g], "mean", round(st.mean(g), 4), "sd", round(st.stdev(g), 4), "ratio", round(st.mean(g) / st.stdev(g), 2))
    avg = {m: st.mean(get(row[es]) for es in (12345, 1, 2, 3)) for m, row in tab.items()}
    g = [avg[f"fg{s}"] - avg["base"] for s in range(3)]
    print(" averaged over 4 eval seeds (16 img/prompt): gains", [round(x, 4) for x in g], "mean", round(st.mean(g), 4), "sd", round(st.stdev(g), 4), "ratio", round(st.mean(g) / st.stdev(g), 2))
    # paired eval noise: sd over eval seeds of (fg - base) per RL seed
    pn = [st.stdev([get(tab[f"fg{s}"][es]) - get(tab["base"][es]) for es in (12345, 1, 2, 3)]) for s in range(3)]
    print(" sd over eval seeds of the paired gain, per RL seed", [round(x, 4) for x in pn])
