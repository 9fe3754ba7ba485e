/* page.h: the waiting page, GET /rooms/{room}, and its no-JavaScript join, POST
 * /rooms/{room}/join.
 *
 * The page is rendered from an operator-editable template, waiting.html in the templates
 * directory, read when the routes are registered and again on SIGHUP (page_reload), never while
 * answering. The template language is described in page.c and in the template itself. */
#ifndef ANTRE_PAGE_H
#define ANTRE_PAGE_H

struct router;

/* Where waiting.html is looked for unless page_set_dir says otherwise (relative paths are
 * relative to the gateway's working directory). */
#define PAGE_TEMPLATES_DIR "conf/templates"

/* Read the template from DIR (copied; NULL or "" means PAGE_TEMPLATES_DIR) from the next load
 * on. For a future [gateway] templates_dir directive. */
void page_set_dir(const char *dir);

/* Load the template, register GET /rooms/{room} and POST /rooms/{room}/join on RT, and install
 * the form routes' error answer (the page with the message; reply_set_form_handler). A template
 * that cannot be read or has an error is logged (with its line) and a plain built-in page is
 * used instead, so the gateway still serves the queue. */
void page_register(struct router *rt);

/* Re-read the template (SIGHUP). 0 ok; -1 when it cannot be read or has an error (logged): the
 * page in use is kept. */
int page_reload(void);

/* Free the loaded template (shutdown). */
void page_free(void);

#endif
