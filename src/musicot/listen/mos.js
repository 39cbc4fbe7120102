// The MOS listening test: every song of the kit rated 1-5 on each dimension, blinded and in random order,
// downloaded as one JSON file that musicot.listen.ratings reads. Works from file:// with no server.
"use strict";

const kit = JSON.parse(document.getElementById("kit").textContent);
const storageKey = "musicot-mos-" + kit.kit;
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

function shuffled(items) {
  // Fisher-Yates with the browser's cryptographic generator: each rater hears the systems in their own order.
  const out = items.slice();
  const draws = new Uint32Array(out.length);
  crypto.getRandomValues(draws);
  for (let i = out.length - 1; i > 0; i--) {
    const j = draws[i] % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey) || "null");
    if (saved && saved.kit === kit.kit) return saved;
  } catch (e) {
    // a page opened from file:// may have no storage: progress then lives only in this tab
  }
  const order = shuffled(kit.trials.map((t) => t.trial)).map((id) => {
    const trial = kit.trials.find((t) => t.trial === id);
    return { trial: id, samples: shuffled(trial.samples.map((s) => s.sample)) };
  });
  return { kit: kit.kit, rater: "", started: new Date().toISOString(), order: order, ratings: {} };
}

const state = load();

function save() {
  try {
    localStorage.setItem(storageKey, JSON.stringify(state));
  } catch (e) {
    // no storage: nothing to keep
  }
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function allSamples() {
  return state.order.flatMap((t) => t.samples);
}

function isRated(sample) {
  const r = state.ratings[sample];
  return !!r && kit.dimensions.every((d) => Number.isInteger(r[d.name]));
}

function update() {
  const samples = allSamples();
  const done = samples.filter(isRated).length;
  document.getElementById("progress").textContent = `${done} of ${samples.length} songs rated`;
  for (const node of document.querySelectorAll(".sample")) {
    node.classList.toggle("rated", isRated(node.dataset.sample));
  }
  const rater = document.getElementById("rater").value.trim();
  const button = document.getElementById("submit");
  button.disabled = !(done === samples.length && rater);
  button.title = button.disabled ? "rate every song and give your name first" : "";
}

function render() {
  const root = document.getElementById("trials");
  state.order.forEach((entry, t) => {
    const trial = kit.trials.find((x) => x.trial === entry.trial);
    const section = el("section", { class: "trial", "data-trial": trial.trial }, [
      el("h2", { text: `Set ${t + 1} of ${state.order.length}` }),
      el("p", { class: "prompt", text: trial.prompt }),
      el("details", {}, [el("summary", { text: "lyrics" }), el("pre", { class: "lyrics", text: trial.lyrics })]),
    ]);
    entry.samples.forEach((sampleId, position) => {
      const sample = trial.samples.find((s) => s.sample === sampleId);
      const box = el("div", { class: "sample", "data-sample": sampleId }, [
        el("h3", { text: `Song ${LETTERS[position] || position + 1}` }),
        el("audio", { controls: "", preload: "metadata", src: sample.audio }),
      ]);
      for (const dim of kit.dimensions) {
        const fs = el("fieldset", { "data-dimension": dim.name }, [
          el("legend", { text: `${dim.label}: ${dim.question}` }),
        ]);
        for (let v = 1; v <= 5; v++) {
          const input = el("input", { type: "radio", name: `${sampleId}:${dim.name}`, value: String(v) });
          const r = state.ratings[sampleId];
          if (r && r[dim.name] === v) input.checked = true;
          input.addEventListener("change", () => {
            state.ratings[sampleId] = Object.assign(state.ratings[sampleId] || {}, { [dim.name]: v });
            save();
            update();
          });
          fs.appendChild(el("label", {}, [input, document.createTextNode(` ${v} ${kit.scale[v - 1]}`)]));
        }
        box.appendChild(fs);
      }
      section.appendChild(box);
    });
    root.appendChild(section);
  });
}

function download() {
  const rater = document.getElementById("rater").value.trim();
  const ratings = [];
  state.order.forEach((entry, t) => {
    entry.samples.forEach((sample, position) => {
      ratings.push(Object.assign({ sample: sample, trial: entry.trial, trial_position: t, position: position },
        state.ratings[sample]));
    });
  });
  const file = {
    format: kit.ratings_format,
    version: kit.ratings_version,
    kit: kit.kit,
    rater: rater,
    started: state.started,
    submitted: new Date().toISOString(),
    ratings: ratings,
  };
  const blob = new Blob([JSON.stringify(file, null, 1)], { type: "application/json" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `mos_${rater.replace(/[^\w.-]+/g, "_")}_${kit.kit}.json` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  document.getElementById("done").textContent =
    "Downloaded. Send the file to the experimenter; it goes into the ratings folder of the run.";
}

document.getElementById("rater").value = state.rater;
document.getElementById("rater").addEventListener("input", (e) => {
  state.rater = e.target.value;
  save();
  update();
});
document.getElementById("submit").addEventListener("click", download);
save(); // the drawn order is the rater's from the first opening, rated or not
render();
update();
