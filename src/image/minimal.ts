// The `minimal` image (formerly `base`): busybox, tini, Node and lohar.
import { resolveDebs } from "./apt.js";
import { assemble } from "./assemble.js";
import { collectInputs, inputsHash, PACKAGES, type Inputs } from "./inputs.js";
import type { Recipe, RecipeContext } from "./recipe.js";
import { KERNEL_META_PACKAGE, kernelInputs } from "./vm-artifacts.js";

export function minimalRecipe(c: RecipeContext): Recipe {
  let inputs: Inputs | undefined;
  let hash = "";
  return {
    async currentHash() {
      const debs = await resolveDebs(c.vm ? [...PACKAGES, KERNEL_META_PACKAGE] : PACKAGES, c.cacheDir, c.log);
      const kernel = c.vm ? await kernelInputs(debs[KERNEL_META_PACKAGE]) : null;
      inputs = await collectInputs({ debs, nodeBinary: c.nodeBinary, loharJs: c.loharJs, vm: c.vm, kernel, hashes: c.hashes });
      hash = inputsHash(inputs);
      return hash;
    },
    async assemble(dir) {
      if (!inputs) throw new Error("minimal recipe: currentHash() first");
      return assemble({ dir, name: c.name, inputs, inputsHash: hash, nodeBinary: c.nodeBinary, loharJs: c.loharJs, cacheDir: c.cacheDir, vm: c.vm, log: c.log, started: c.started });
    },
  };
}
