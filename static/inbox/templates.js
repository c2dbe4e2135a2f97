// The WhatsApp template picker: choose an approved template, fill one field per placeholder
// and see the message as the contact will read it. The choices (text, placeholders, why a
// template cannot be sent) come from the server in #template-picker-data.
import { el } from "./dom.js";

const PLACEHOLDER = /\{\{\s*([a-z0-9_]+)\s*\}\}/g;

const fill = (text, names, values) =>
  text.replace(PLACEHOLDER, (match, name) => {
    const value = values[names.indexOf(name)];
    return value ? value : match;
  });

export const watchTemplatePicker = () => {
  const form = document.querySelector("[data-template-picker]");
  const data = document.getElementById("template-picker-data");
  if (!form || !data) return;
  const choices = new Map(JSON.parse(data.textContent).map((t) => [String(t.id), t]));
  const fields = form.querySelector("[data-template-fields]");
  const preview = form.querySelector("[data-template-preview]");
  const previewText = form.querySelector("[data-template-preview-text]");
  const send = form.querySelector("[data-template-send]");
  let chosen = null;

  const values = (part) => [...fields.querySelectorAll(`[data-part=${part}]`)].map((input) => input.value.trim());

  const update = () => {
    if (!chosen) return;
    const header = chosen.header_format === "TEXT" ? fill(chosen.header, chosen.header_fields, values("header")) : "";
    const parts = [header, fill(chosen.body, chosen.body_fields, values("body")), chosen.footer];
    previewText.textContent = parts.filter(Boolean).join("\n\n");
    preview.hidden = false;
    send.disabled = [...fields.querySelectorAll("input")].some((input) => !input.value.trim());
  };

  const choose = (template) => {
    chosen = template;
    form.querySelector("[data-template-name]").value = template.name;
    form.querySelector("[data-template-language]").value = template.language;
    fields.replaceChildren();
    const media = template.header_format && template.header_format !== "TEXT";
    const parts = [
      ["header", template.header_fields, media ? `Header ${template.header_format.toLowerCase()} link` : "Header"],
      ["body", template.body_fields, "Body"],
    ];
    for (const [part, names, label] of parts) {
      names.forEach((name, index) => {
        const id = `template-${part}-${index}`;
        fields.append(
          el("label", { for: id, text: media && part === "header" ? label : `${label} {{${name}}}` }),
          el("input", { id, name: `template_${part}`, "data-part": part, required: true, autocomplete: "off" }),
        );
      });
    }
    update();
    fields.querySelector("input")?.focus();
  };

  form.addEventListener("change", (event) => {
    if (event.target.name === "template_choice") choose(choices.get(event.target.value));
  });
  form.addEventListener("input", (event) => {
    if (event.target.dataset.part) update();
  });
  // After a send the form is reset: back to "pick a template". The sender re-enables its
  // button right after the reset, so disable it once that has run.
  form.addEventListener("reset", () => {
    chosen = null;
    fields.replaceChildren();
    preview.hidden = true;
    queueMicrotask(() => {
      send.disabled = true;
    });
  });
};
