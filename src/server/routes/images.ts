// GET /images and GET /images/:name: the images sandboxes can be created
// from (built by the operator with `bhatti image build`). Read-only.
import type { Router } from "../http.js";
import { inspectImage, listImages } from "../../image/catalog.js";
import { NAME_RE } from "../../image/names.js";
import { badRequest, notFound } from "../../util/errors.js";
import { ROUTES } from "../../api/routes.js";

export function imageRoutes(router: Router, imagesDir: string, defaultImage: string): void {
  router.route(ROUTES.listImages, async () => ({ default: defaultImage, images: (await listImages(imagesDir)).map((i) => ({ ...i, default: i.name === defaultImage })) }));
  router.route(ROUTES.getImage, async ({ params }) => {
    if (!NAME_RE.test(params.name)) throw badRequest(`image name must match ${NAME_RE.source}`);
    const d = await inspectImage(imagesDir, params.name);
    if (!d) throw notFound(`image ${JSON.stringify(params.name)} not found`, "image_not_found");
    return { ...d, default: d.name === defaultImage };
  });
}
