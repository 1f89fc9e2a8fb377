/**
 * `protomesh new`: scaffolds a service project from the templates in `scaffold/templates/`.
 * The command is the user's way in; these exports let tools and tests render or create one.
 */
export { newCommand } from "./new-command";
/** Creates a project on disk, or renders its files in memory. */
export { createProject, projectFiles, type CreateProjectOptions, type CreatedProject } from "./create-project";
/** Checks a project name and derives its spellings (proto package, TypeScript identifiers). */
export { nameProblem, projectNames, MAX_NAME_LENGTH, type ProjectNames } from "./names";
export type { ProjectFile } from "./render";
