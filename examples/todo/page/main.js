/**
 * Mounts React components as react_phoenix did for the seed: every `[data-react-class]` element gets the component
 * its class names (here `Components.Todo`), with the JSON of its `data-react-props`.
 */
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { Todo } from "./todo.js";

window.Components = { ...window.Components, Todo };

for (const element of document.querySelectorAll("[data-react-class]")) {
  const component = element.dataset.reactClass.split(".").reduce((scope, name) => scope?.[name], window);
  if (typeof component !== "function") continue;
  const props = JSON.parse(element.dataset.reactProps || "{}");
  createRoot(element).render(createElement(component, props));
}
