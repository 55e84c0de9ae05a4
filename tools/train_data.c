/* placeholder */ typedef int okto_train_data_placeholder;
